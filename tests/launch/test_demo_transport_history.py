"""The demo's shuttle history: generated from the timetable, deterministic, peaking in the rush
hours; backfilled into a real cloud through real Mosquitto (boardings as each shuttle's node)
and the live service's stop-event upsert, it gives ridership, load factor and on-time figures,
and a second backfill changes nothing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.db.tables import TRANSPORT_BOARDINGS, TRANSPORT_STOP_EVENTS
from cloud.settings import CloudSettings
from cloud.transport import schedule
from cloud.transport.gtfs_export import sample_zip
from cloud.transport.plan import TripPlan
from cloud.transport.stop_events import persist_stop_events
from launch import devservers
from launch.demo import roster_for_today, roster_path
from launch.demo_fleet import demo_feed, node_of
from launch.demo_history import backfill
from launch.demo_transport import set_up_transport
from ruang import contract
from simulators.transport_history import transport_history
from tests.cloud.conftest import RunningCloud, start_cloud, unique

TZ = "Asia/Makassar"
WITA = ZoneInfo(TZ)


def _one_route(plans: list[TripPlan], route: str = "K1") -> list[TripPlan]:
    return [p for p in plans if p.route_id == route]


async def _plans(cloud: RunningCloud, day: date) -> list[TripPlan]:
    async with cloud.app.state.engine.connect() as conn:
        return await schedule.plans_for_day(conn, day)


async def _wait(check: Any, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} never happened")
        await asyncio.sleep(0.1)


async def _counts(cloud: RunningCloud) -> tuple[int, int]:
    async with cloud.app.state.engine.connect() as conn:
        boardings = await conn.scalar(select(func.count()).select_from(TRANSPORT_BOARDINGS))
        stops = await conn.scalar(select(func.count()).select_from(TRANSPORT_STOP_EVENTS))
    return int(boardings or 0), int(stops or 0)


async def test_a_backfilled_day_gives_ridership_and_on_time_figures_and_a_second_changes_nothing(
    database_url: str, own_broker: devservers.Mosquitto, tmp_path: Path
) -> None:
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=own_broker.url,
        mqtt_client_id=unique("ruang-demo-transport-history"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        layout_file=SAMPLE_LAYOUT,
        flush_interval_s=0.05,
    )
    now = datetime.now(UTC)
    day = now.astimezone(WITA).date() - timedelta(days=1)
    async with start_cloud(settings) as cloud:
        roster, badges = roster_for_today(
            roster_path().read_text(encoding="utf-8"), now.astimezone(WITA)
        )
        r = await cloud.http.post(
            "/api/v1/people/import", content=roster.encode(), headers={"content-type": "text/csv"}
        )
        r.raise_for_status()
        await set_up_transport(cloud.http)
        # The demo's timetable (every day, shifted as the demo would shift it now).
        feed, shift = demo_feed(sample_zip(), now)
        r = await cloud.http.post(
            "/api/v1/transport/gtfs", content=feed, headers={"content-type": "application/zip"}
        )
        r.raise_for_status()
        plans = _one_route(await _plans(cloud, day))
        assert plans
        past = transport_history(
            plans,
            sorted(badges.values()),
            vehicle_of={"K1": "ikn-bus-1"}.get,
            node_of=node_of,
            tz=TZ,
            seed=4,
            shift_h=shift,
        )
        assert past.boardings and past.stop_events
        # The rush hours carry the riders, in natural hours whatever the demo's shift.
        hours = Counter(datetime.fromtimestamp(b.ts, WITA).hour for b in past.boardings)
        rush = hours[7] + hours[16] + hours[17]
        assert rush > sum(hours.values()) / 2, hours

        stats = cloud.ingestor.stats
        before = (stats.applied, stats.duplicates)
        await persist_stop_events(cloud.app.state.engine, past.stop_events)
        messages: list[contract.Message] = list(past.boardings)
        sent = await backfill(own_broker.url, messages, client_id=unique("transport"))
        assert sent.events == len(past.boardings)

        async def all_applied() -> bool:
            return stats.applied - before[0] >= len(past.boardings)

        await _wait(all_applied, "every boarding applied")
        assert not {"not_bound", "unknown_resource", "clock_skew"} & set(stats.rejected)
        params = {
            "from": datetime.combine(day, datetime.min.time(), WITA).isoformat(),
            "to": datetime.combine(day + timedelta(days=1), datetime.min.time(), WITA).isoformat(),
        }
        got = await cloud.http.get(
            "/api/v1/analytics/transport/ridership", params={**params, "by": "hour"}
        )
        assert got.status_code == 200, got.text
        ridership = got.json()
        assert ridership["total"] == len(past.boardings)
        routes = (await cloud.http.get("/api/v1/analytics/transport/routes", params=params)).json()
        k1 = next(row for row in routes["rows"] if row["route"] == "K1")
        assert k1["boardings"] == len(past.boardings)
        assert k1["departures"] > 0 and k1["on_time"] > 0
        assert 0 < k1["on_time_rate"] <= 1 and k1["load_factor"] > 0
        counts = await _counts(cloud)

        # The same day again: the boardings are duplicates, the stop events the same rows.
        await persist_stop_events(cloud.app.state.engine, past.stop_events)
        await backfill(own_broker.url, messages, client_id=unique("transport"))

        async def all_dropped() -> bool:
            return stats.duplicates - before[1] >= len(past.boardings)

        await _wait(all_dropped, "the repeated boardings dropped as duplicates")
        assert await _counts(cloud) == counts
        again = (await cloud.http.get("/api/v1/analytics/transport/routes", params=params)).json()
        assert again["rows"] == routes["rows"]


def test_the_same_trips_give_the_same_history_and_ids() -> None:
    from cloud.transport.plan import StopPlan

    start = datetime(2026, 12, 4, 7, 30, tzinfo=WITA).timestamp()
    stops = tuple(
        StopPlan(
            f"S{i}",
            i + 1,
            f"Stop {i}",
            -0.97 + i * 0.001,
            116.7,
            i * 500.0,
            start + i * 120,
            start + i * 120 + 30,
        )
        for i in range(4)
    )
    plan = TripPlan("T1", "K1", "20261204", (), stops)
    first = transport_history(
        [plan], ["04000001", "04000002", "04000003"] * 4, vehicle_of=lambda r: "bus",
        node_of=node_of, tz=TZ, seed=9,
    )  # fmt: skip
    again = transport_history(
        [plan], ["04000001", "04000002", "04000003"] * 4, vehicle_of=lambda r: "bus",
        node_of=node_of, tz=TZ, seed=9,
    )  # fmt: skip
    assert first == again
    assert len({b.id for b in first.boardings}) == len(first.boardings)
    assert len(first.stop_events) == 4
