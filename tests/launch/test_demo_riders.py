"""A rider at a demo shuttle's door: the demo's vehicle agent wiring (launch/demo_fleet.py) with
a door reader on a pty, a real cloud and real Mosquitto; a badge of the demo roster tapped
while the shuttle stands at a stop of its running trip becomes load on /api/v1/transport/live,
and the demo's rider plan for a trip is reproducible."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.settings import CloudSettings
from cloud.transport.gtfs_export import sample_zip
from launch import devservers
from launch.demo import roster_for_today, roster_path
from launch.demo_fleet import _agent, assign, demo_feed, next_plan
from launch.demo_riders import riders_for
from launch.demo_transport import set_up_transport
from simulators.riders import ParkedGps, StopPlace, door_reader
from tests.cloud.conftest import start_cloud, unique
from tests.edge.test_agent import running

WITA = ZoneInfo("Asia/Makassar")


async def test_a_roster_badge_tapped_at_a_demo_shuttle_stop_shows_as_load_on_the_live_view(
    database_url: str, mosquitto_server: devservers.Mosquitto, tmp_path: Path
) -> None:
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-demo-riders"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        snapshot_key_path=tmp_path / "snapshot-signing-key.pem",
        layout_file=SAMPLE_LAYOUT,
        flush_interval_s=0.05,
    )
    now = datetime.now(UTC)
    async with start_cloud(settings) as cloud:
        roster, badges = roster_for_today(
            roster_path().read_text(encoding="utf-8"), now.astimezone(WITA)
        )
        r = await cloud.http.post(
            "/api/v1/people/import", content=roster.encode(), headers={"content-type": "text/csv"}
        )
        r.raise_for_status()
        await set_up_transport(cloud.http)
        feed, _ = demo_feed(sample_zip(), now)
        r = await cloud.http.post(
            "/api/v1/transport/gtfs", content=feed, headers={"content-type": "application/zip"}
        )
        r.raise_for_status()
        plan = await next_plan(database_url, "K1", now.timestamp(), set())
        assert plan is not None
        key = tmp_path / "snapshot.pub"
        key.write_bytes((await cloud.http.get("/api/v1/snapshot-key")).content)
        parked = ParkedGps([StopPlace(s.stop_id, s.lat, s.lon) for s in plan.stops])
        stop = plan.stops[1].stop_id
        person = sorted(badges)[0]
        async with door_reader() as reader, parked.gps:
            parked.park(stop)
            agent = _agent(
                "ikn-bus-1", parked.path, mosquitto_server.url, tmp_path, key, reader.path
            )
            async with running(agent):
                await assign(cloud.http, "ikn-bus-1", plan)
                load = 0
                deadline = time.monotonic() + 60
                # Tap until the node holds a snapshot with the trip: a repeat tap of a rider
                # already on is not counted again, so the load is riders, not taps.
                while load < 1:
                    if time.monotonic() > deadline:
                        pytest.fail("the tap never showed as load")
                    await reader.tap(badges[person])
                    await asyncio.sleep(1.0)
                    live = (await cloud.http.get("/api/v1/transport/live")).json()
                    vehicles = live if isinstance(live, list) else live["vehicles"]
                    bus = next(v for v in vehicles if v["vehicle"] == "ikn-bus-1")
                    load = bus["load"] or 0
                assert bus["trip"] == plan.trip_id
                await reader.tap(badges[person])
                await asyncio.sleep(1.5)
                live = (await cloud.http.get("/api/v1/transport/live")).json()
                vehicles = live if isinstance(live, list) else live["vehicles"]
                assert next(v for v in vehicles if v["vehicle"] == "ikn-bus-1")["load"] == 1


def test_the_riders_of_a_trip_are_the_same_each_time_and_reserve_only_where_they_can() -> None:
    from cloud.transport.plan import StopPlan, TripPlan

    start = datetime(2026, 12, 4, 7, 30, tzinfo=WITA).timestamp()
    stops = tuple(
        StopPlan(f"S{i}", i + 1, f"Stop {i}", -0.97, 116.7, i * 500.0, start + i * 120, start + i * 120 + 30)  # noqa: E501
        for i in range(5)
    )  # fmt: skip
    plan = TripPlan("T1", "K1", "20261204", (), stops)
    roster = {f"p-{i}": f"04{i:06X}" for i in range(30)}
    walk, reserved = riders_for(plan, roster, 7, reservable={"S3"})
    assert (walk, reserved) == riders_for(plan, roster, 7, reservable={"S3"})
    assert walk and all(r.stop != "S4" for r in walk)  # nobody boards at the last stop
    assert reserved and all(r.stop == "S3" for r in reserved)
    assert sum(not r.taps for r in reserved) == 1  # one no-show
    assert len({r.person for r in walk + reserved}) == len(walk) + len(reserved)
