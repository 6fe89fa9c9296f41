"""Shared scenario for the tracking, ETA and GTFS-RT tests: the sample shuttle trip
driven by the simulator's model (no pty), sampled like the edge GPS driver publishes."""

from __future__ import annotations

from collections.abc import Iterator

from cloud.transport.tracking import Fix, StopEvent, VehicleTracker
from simulators.shuttle import ShuttleRun

START = 1_724_032_800.0  # 2024-08-19 10:00 WITA, a Monday


def fixes(run: ShuttleRun, every_s: float = 5.0, until: float | None = None) -> Iterator[Fix]:
    """The fixes an edge node publishing every `every_s` would send (none in a dead zone)."""
    t = run.t0
    end = run.end + 60 if until is None else until
    while t <= end:
        s = run.sample(t)
        if s.fix:
            yield Fix(t, s.lat, s.lon, s.speed_kmh, 0.9, 1, s.course_deg)
        t += every_s


def final_events(tracker: VehicleTracker, events: list[StopEvent]) -> dict[int, StopEvent]:
    out: dict[int, StopEvent] = {}
    for e in events:
        out[e.stop_sequence] = e
    return out
