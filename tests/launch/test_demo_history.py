"""The demo's simulated history: the generator is deterministic and shaped like office weeks;
backfilled through real Mosquitto into a real cloud it gives every floor utilisation, and a
second backfill changes nothing (exactly-once on the message ids)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from cloud.buildings.layout import SAMPLE_LAYOUT, load_layout
from cloud.db.tables import BOOKINGS, EVENTS
from cloud.settings import CloudSettings
from launch import devservers
from launch.demo import roster_for_today, roster_path
from launch.demo_history import backfill, demo_closure, floor_plans
from ruang import contract
from simulators.history import FloorPlan, history, past_weekdays
from tests.cloud.conftest import RunningCloud, start_cloud, unique

TZ = "Asia/Makassar"
PLANS = [
    FloorPlan("n1", ("A-D01", "A-D02", "A-D03"), (("A-R1", "A-R1-occ"),)),
    FloorPlan("n2", ("B-D01", "B-D02"), ()),
]
BADGES = ["04A1B2C3", "04A1B2C4", "04A1B2C5"]


def test_the_same_days_give_the_same_messages_and_ids() -> None:
    days = past_weekdays(date(2026, 12, 7), 2)
    first = history(days, PLANS, BADGES, tz=TZ, seed=5)
    again = history(list(reversed(days)), PLANS, BADGES, tz=TZ, seed=5)
    assert [contract.encode(m) for m in first] == [contract.encode(m) for m in again]
    assert len({m.id for m in first}) == len(first)
    # A day's messages do not depend on which other days are generated with it.
    one_day = history(days[3:4], PLANS, BADGES, tz=TZ, seed=5)
    assert {m.id for m in one_day} <= {m.id for m in first}
    other_seed = history(days, PLANS, BADGES, tz=TZ, seed=6)
    assert [m.ts for m in other_seed] != [m.ts for m in first]


def test_a_generated_day_looks_like_an_office_day() -> None:
    days = past_weekdays(date(2026, 12, 7), 3)
    assert all(d.weekday() < 5 for d in days) and len(days) == 15
    holiday = demo_closure(days)
    floors = [
        FloorPlan(
            f"n{f}", tuple(f"F{f}-D{d:02d}" for d in range(1, 7)), ((f"F{f}-R1", "A-R1-occ"),)
        )
        for f in range(1, 4)
    ]
    messages = history(days, floors, BADGES, tz=TZ, seed=1, extra_holidays=holiday)
    zone = ZoneInfo(TZ)
    local_day = Counter(datetime.fromtimestamp(m.ts, zone).date() for m in messages)
    assert holiday and holiday[0] in days and local_day[holiday[0]] == 0
    per_desk: dict[tuple[str, date], list[contract.Message]] = defaultdict(list)
    for m in messages:
        if isinstance(m, contract.CheckIn | contract.CheckOut):
            per_desk[(m.desk, datetime.fromtimestamp(m.ts, zone).date())].append(m)
    for (_, _), taps in per_desk.items():
        # One stay per desk and day: in, then out, the same badge, within working hours.
        assert [type(t) for t in taps] == [contract.CheckIn, contract.CheckOut]
        assert len({t.badge for t in taps}) == 1
        start, end = (datetime.fromtimestamp(t.ts, zone) for t in taps)
        assert start.hour >= 7 and start < end and end.hour < 19
    arrivals = [
        datetime.fromtimestamp(m.ts, zone).hour for m in messages if isinstance(m, contract.CheckIn)
    ]
    assert Counter(arrivals).most_common(1)[0][0] in (7, 8)
    fridays = [d for d in days if d.weekday() == 4 and d not in holiday]
    others = [d for d in days if d.weekday() < 4 and d not in holiday]
    checkins = Counter(
        datetime.fromtimestamp(m.ts, zone).date()
        for m in messages
        if isinstance(m, contract.CheckIn)
    )
    assert sum(checkins[d] for d in fridays) / len(fridays) < sum(
        checkins[d] for d in others
    ) / len(others)
    lunch_away = [
        m for m in messages if isinstance(m, contract.Presence) and not m.present
        and 11 <= datetime.fromtimestamp(m.ts, zone).hour < 13
    ]  # fmt: skip
    assert lunch_away
    rooms = [m for m in messages if isinstance(m, contract.RoomPresence)]
    assert rooms and all(m.sensor == "A-R1-occ" for m in rooms)


async def _counts(cloud: RunningCloud) -> tuple[int, int]:
    async with cloud.app.state.engine.connect() as conn:
        events = await conn.scalar(select(func.count()).select_from(EVENTS))
        bookings = await conn.scalar(select(func.count()).select_from(BOOKINGS))
    return int(events or 0), int(bookings or 0)


async def _wait(check: Any, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} never happened")
        await asyncio.sleep(0.1)


async def test_backfill_gives_every_floor_utilisation_and_a_second_one_changes_nothing(
    database_url: str, own_broker: devservers.Mosquitto, tmp_path: Path
) -> None:
    mosquitto_server = own_broker
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-demo-history"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        layout_file=SAMPLE_LAYOUT,
        flush_interval_s=0.05,
    )
    layout = load_layout(SAMPLE_LAYOUT)
    # Three floors, each bound to its own node; a few desks and one room of each.
    plans = [replace(p, desks=p.desks[:4], rooms=p.rooms[:1]) for p in floor_plans(layout)]
    assert [p.node for p in plans] == ["ikn-demo-l1", "ikn-a1-l2", "ikn-a1-l3"]
    zone = ZoneInfo(layout.site.timezone)
    today = datetime.now(zone).date()
    days = past_weekdays(today, 1)[-3:]
    async with start_cloud(settings) as cloud:
        roster, badges = roster_for_today(
            roster_path().read_text(encoding="utf-8"), datetime.now(zone)
        )
        r = await cloud.http.post(
            "/api/v1/people/import", content=roster.encode(), headers={"content-type": "text/csv"}
        )
        r.raise_for_status()
        messages = history(days, plans, list(badges.values()), tz=layout.site.timezone, seed=3)
        events = sum(1 for m in messages if contract.is_event(m))
        assert events and any(isinstance(m, contract.RoomPresence) for m in messages)
        stats = cloud.ingestor.stats
        before = (stats.applied, stats.duplicates)
        sent = await backfill(mosquitto_server.url, messages, client_id=unique("history"))
        assert sent.messages == len(messages) and sent.events == events

        async def all_applied() -> bool:
            return stats.applied - before[0] >= events

        await _wait(all_applied, "every history event applied")
        # Each floor spoke as the node its desks and rooms are bound to, inside the clock window.
        refused = {"not_bound", "unknown_resource", "clock_skew"} & set(stats.rejected)
        assert not refused, stats.rejected
        params = {
            "from": datetime.combine(days[0], datetime.min.time(), zone).isoformat(),
            "to": datetime.combine(today, datetime.min.time(), zone).isoformat(),
            "level": "floor",
            "bucket": "range",
        }
        got = await cloud.http.get("/api/v1/analytics/utilisation", params=params)
        assert got.status_code == 200, got.text
        report = got.json()
        used = {row["entity"]: row["utilisation_pct"] for row in report["rows"]}
        assert set(used) == {"A1-L1", "A1-L2", "A1-L3"}
        assert all(pct > 0 for pct in used.values()), used
        counts = await _counts(cloud)
        assert counts[0] >= events and counts[1] > 0  # roster badges -> walk-up bookings

        # The same history again: every event is a duplicate, nothing moves.
        again = await backfill(mosquitto_server.url, messages, client_id=unique("history"))
        assert again.messages == len(messages)

        async def all_dropped() -> bool:
            return stats.duplicates - before[1] >= events

        await _wait(all_dropped, "the repeated events dropped as duplicates")
        assert await _counts(cloud) == counts
        repeat = (await cloud.http.get("/api/v1/analytics/utilisation", params=params)).json()
        assert repeat["rows"] == report["rows"]
