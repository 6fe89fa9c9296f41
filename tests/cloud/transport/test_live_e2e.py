"""End to end: the shuttle simulator on a pty -> the edge GPS driver -> the edge uplink
-> real Mosquitto -> cloud ingestion -> tracker -> GTFS-Realtime shows the vehicle on its
trip, and its arrivals at every stop are detected and stored (bench/transport_e2e.py is
the harness; the benchmark times the same run)."""

from __future__ import annotations

from pathlib import Path

from bench.transport_e2e import drive_shuttle
from cloud.settings import CloudSettings
from tests.cloud.conftest import serving


async def test_shuttle_on_a_pty_shows_in_gtfs_rt_with_its_stops_detected(
    settings: CloudSettings, tmp_path: Path
) -> None:
    async with serving(settings) as (base, _task):
        # 8x simulated time: the whole trip with its dwells in about 40 s.
        result = await drive_shuttle(base, settings, tmp_path, time_factor=8.0)
    assert result.trip_seen_in_feed and result.trip_update_seen
    assert result.latencies_ms  # moving positions of the pty reached the public feed
    assert result.stream_latencies_ms  # ... and the dispatcher map's SSE stream
    # The feed named stops along the way, in trip order.
    assert len(result.stops_seen) >= 2
    rows = result.stop_events
    assert [r.stop_sequence for r in rows] == [s.stop_sequence for s in result.plan.stops]
    assert all(r.arrival_at is not None and r.stopped and not r.inferred for r in rows)
    assert all(r.departure_at is not None for r in rows[:-1])
    arrivals = [r.arrival_at for r in rows]
    assert arrivals == sorted(arrivals)
