"""Utilisation analytics on SQLite and PostgreSQL, against a hand-built history.

The day is Monday 2024-01-08 in Asia/Makassar (UTC+8). Building B has zone Z1
(desks D1, D2) and zone Z2 (D3, D4):

* D1: checked in 09:00-12:00; sensor present 09:05-11:50; booked 09:00-13:00 (completed).
* D2: checked in 10:00-11:00, and again from 16:00 without a check-out (open until
  `to`); a cancelled booking 14:00-15:00; a walk-up booking from 16:00.
* D3: checked in from 22:00 the day before until 01:00; booked 13:00-15:00 (no_show);
  sensor present 20:00-21:00.
* D4: nothing.

Occupied desk-hours: D1 3, D2 1 + 8, D3 1 = 13 of 4 × 24.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.analytics import utilisation as analytics
from cloud.db.models import (
    Booking,
    Building,
    Desk,
    Event,
    Floor,
    Node,
    Person,
    PresenceChange,
    Site,
    Zone,
)
from cloud.ingest.apply import Applier, TelemetryBatch

from ..conftest import RunningCloud

TZ = ZoneInfo("Asia/Makassar")
DAY = datetime(2024, 1, 8, tzinfo=TZ)
FROM, TO = DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()
_ids = count(1)


def at(hour: float, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hour)


def event(desk: str, kind: str, ts: datetime) -> dict[str, Any]:
    return {
        "message_id": f"m-{next(_ids)}",
        "node": "N",
        "desk": desk,
        "kind": kind,
        "ts": ts,
        "received_at": ts,
        "badge": "b-1",
        "payload": {},
    }


def booking(
    desk: str, start: float, end: float, status: str, walk_up: bool = False
) -> dict[str, Any]:
    return {
        "desk_id": desk,
        "person_id": "p-1",
        "starts_at": at(start),
        "ends_at": at(end),
        "status": status,
        "exclusive_person": False,
        "created_at": at(-24),
        "walk_up": walk_up,
    }


async def build_history(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(Node), [{"id": "N", "online": True}])
        await conn.execute(
            insert(Site),
            [
                {
                    "id": "S",
                    "name": "Site",
                    "timezone": "Asia/Makassar",
                    "max_booking_hours": 10,
                    "max_days_ahead": 14,
                    "one_desk_per_person_per_slot": False,
                    "checkin_grace_min": 15,
                    "away_release_min": 30,
                }
            ],
        )
        await conn.execute(insert(Building), [{"id": "B", "site_id": "S", "name": "B"}])
        await conn.execute(
            insert(Floor), [{"id": "F", "building_id": "B", "level": 1, "name": "F"}]
        )
        await conn.execute(
            insert(Zone),
            [
                {"id": "Z1", "floor_id": "F", "name": "Z1"},
                {"id": "Z2", "floor_id": "F", "name": "Z2"},
            ],
        )
        await conn.execute(
            insert(Desk),
            [
                {
                    "id": d,
                    "node_id": "N",
                    "state": "free",
                    "floor_id": "F",
                    "zone_id": z,
                    "mode": "reservable",
                    "features": [],
                }
                for d, z in (("D1", "Z1"), ("D2", "Z1"), ("D3", "Z2"), ("D4", "Z2"))
            ],
        )
        await conn.execute(
            insert(Person), [{"id": "p-1", "kind": "asn", "name": "P", "role": "asn"}]
        )
        await conn.execute(
            insert(Event),
            [
                event("D1", "checkin", at(9)),
                event("D1", "checkout", at(12)),
                event("D2", "checkin", at(10)),
                event("D2", "checkout", at(11)),
                event("D2", "checkin", at(16)),
                event("D3", "checkin", at(22, day=-1)),
                event("D3", "checkout", at(1)),
                # Not check-in history: must be ignored.
                event("D4", "unit_status", at(9)),
            ],
        )
        await conn.execute(
            insert(PresenceChange),
            [
                {"desk_id": "D1", "present": True, "ts": at(9 + 5 / 60)},
                {"desk_id": "D1", "present": False, "ts": at(11 + 50 / 60)},
                {"desk_id": "D3", "present": True, "ts": at(20)},
                {"desk_id": "D3", "present": False, "ts": at(21)},
            ],
        )
        await conn.execute(
            insert(Booking),
            [
                booking("D1", 9, 13, "completed"),
                booking("D3", 13, 15, "no_show"),
                booking("D2", 14, 15, "cancelled"),
                booking("D2", 16, 23, "checked_in", walk_up=True),
            ],
        )


async def get(cloud: RunningCloud, path: str, **params: str) -> Any:
    r = await cloud.http.get(f"/api/v1/analytics/{path}", params={"from": FROM, "to": TO, **params})
    assert r.status_code == 200, r.text
    return r.json()


async def get_csv(cloud: RunningCloud, path: str, **params: str) -> list[dict[str, str]]:
    r = await cloud.http.get(
        f"/api/v1/analytics/{path}", params={"from": FROM, "to": TO, "format": "csv", **params}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def same(json_rows: list[dict[str, Any]], csv_rows: list[dict[str, str]]) -> None:
    assert len(json_rows) == len(csv_rows)
    for j, c in zip(json_rows, csv_rows, strict=True):
        assert list(c) == list(j)
        for key, value in j.items():
            if value is None:
                assert c[key] == ""
            elif isinstance(value, float):
                assert float(c[key]) == value
            else:
                assert c[key] == str(value)


async def test_utilisation_by_day(cloud: RunningCloud) -> None:
    await build_history(cloud.app.state.engine)
    body = await get(cloud, "utilisation", level="building", bucket="day")
    assert body["level"] == "building" and body["from"] == FROM
    [row] = body["rows"]
    assert row["entity"] == "B" and row["desks"] == 4
    assert row["bucket_start"] == FROM and row["bucket_end"] == TO
    assert row["occupied_hours"] == 13.0
    assert row["utilisation_pct"] == round(100 * 13 / 96, 2)  # 13.54
    assert row["peak_occupancy"] == 2  # D1 and D2 at 10:00-11:00
    # Occupied 00-01, 09-12, 16-24 (12 h) with 13 desk-hours in them.
    assert row["avg_occupancy_when_occupied"] == round(13 / 12, 4)
    # D1 completed + D3 no-show; the cancelled and the walk-up do not count.
    assert (row["bookings"], row["no_shows"], row["no_show_rate"]) == (2, 1, 0.5)
    same(body["rows"], await get_csv(cloud, "utilisation", level="building", bucket="day"))

    zones = {
        r["entity"]: r
        for r in (await get(cloud, "utilisation", level="zone", bucket="day"))["rows"]
    }
    assert zones["Z1"]["utilisation_pct"] == 25.0  # 12 of 48 desk-hours
    assert zones["Z1"]["avg_occupancy_when_occupied"] == round(12 / 11, 4)
    assert zones["Z1"]["no_show_rate"] == 0.0
    assert zones["Z2"]["utilisation_pct"] == round(100 / 48, 2)
    assert (zones["Z2"]["peak_occupancy"], zones["Z2"]["avg_occupancy_when_occupied"]) == (1, 1.0)
    assert zones["Z2"]["no_show_rate"] == 1.0

    desks = {
        r["entity"]: r
        for r in (await get(cloud, "utilisation", level="desk", bucket="day"))["rows"]
    }
    assert desks["D2"]["occupied_hours"] == 9.0  # the open check-in runs until `to`
    assert desks["D4"]["utilisation_pct"] == 0.0
    assert desks["D4"]["avg_occupancy_when_occupied"] is None
    assert desks["D4"]["no_show_rate"] is None


async def test_utilisation_by_hour_json_and_csv_agree(cloud: RunningCloud) -> None:
    await build_history(cloud.app.state.engine)
    body = await get(cloud, "utilisation", level="building", bucket="hour")
    rows = body["rows"]
    assert len(rows) == 24
    assert rows[10]["bucket_start"] == at(10).isoformat()
    assert (
        rows[10]["utilisation_pct"],
        rows[10]["peak_occupancy"],
        rows[10]["avg_occupancy_when_occupied"],
    ) == (50.0, 2, 2.0)
    assert (
        rows[3]["utilisation_pct"],
        rows[3]["peak_occupancy"],
        rows[3]["avg_occupancy_when_occupied"],
        rows[3]["no_show_rate"],
    ) == (0.0, 0, None, None)
    assert (rows[13]["bookings"], rows[13]["no_show_rate"]) == (1, 1.0)
    assert (rows[9]["bookings"], rows[9]["no_show_rate"]) == (1, 0.0)
    same(rows, await get_csv(cloud, "utilisation", level="building", bucket="hour"))


async def test_booking_sensor_matrix(cloud: RunningCloud) -> None:
    await build_history(cloud.app.state.engine)
    body = await get(cloud, "booking-sensor-matrix", level="desk")
    cells = {r["entity"]: r for r in body["rows"]}
    kinds = ("used_as_booked", "used_without_booking", "booked_but_not_used", "unused")

    def which(desk: str) -> str:
        [kind] = [k for k in kinds if cells[desk][k]]
        return kind

    assert which("D1") == "used_as_booked"
    assert which("D2") == "used_without_booking"  # walk-up and cancelled are not bookings
    assert which("D3") == "booked_but_not_used"  # used, but not during the booking
    assert which("D4") == "unused"
    building = (await get(cloud, "booking-sensor-matrix", level="building"))["rows"]
    assert building == [
        {
            "entity": "B",
            "desk_days": 4,
            "used_as_booked": 1,
            "used_without_booking": 1,
            "booked_but_not_used": 1,
            "unused": 1,
        }
    ]
    same(body["rows"], await get_csv(cloud, "booking-sensor-matrix", level="desk"))


async def test_heatmap(cloud: RunningCloud) -> None:
    await build_history(cloud.app.state.engine)
    body = await get(cloud, "heatmap", building="B")
    assert body["desks"] == 4 and len(body["cells"]) == 7 * 24
    cell = {(c["weekday"], c["hour"]): c["utilisation_pct"] for c in body["cells"]}
    assert cell[(0, 10)] == 50.0
    assert cell[(0, 0)] == 25.0  # D3 until 01:00
    assert cell[(0, 20)] == 25.0  # D2's open check-in
    assert cell[(0, 3)] == 0.0
    assert cell[(1, 10)] is None  # no Tuesday in the range
    same(body["cells"], await get_csv(cloud, "heatmap", building="B"))


async def test_open_checkin_stops_at_now(cloud: RunningCloud) -> None:
    engine: AsyncEngine = cloud.app.state.engine
    await build_history(engine)
    async with engine.connect() as conn:
        history = await analytics.load_history(conn, at(0), at(24), now=at(20))
    assert history.occupied["D2"] == [(at(10), at(11)), (at(16), at(20))]
    [row] = analytics.utilisation(history, "building", "day")
    assert row.occupied_hours == 9.0  # 3 + 1 + 4 + 1


async def test_bad_range_is_a_problem(cloud: RunningCloud) -> None:
    r = await cloud.http.get("/api/v1/analytics/utilisation", params={"from": TO, "to": FROM})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    r = await cloud.http.get(
        "/api/v1/analytics/utilisation",
        params={"from": FROM, "to": at(24 * 40).isoformat(), "bucket": "hour"},
    )
    assert r.status_code == 422


def test_buckets_follow_site_time() -> None:
    bounds = analytics.buckets(at(22, day=-1), at(2), "Asia/Makassar", "day")
    assert bounds == [(at(22, day=-1), at(0)), (at(0), at(2))]


async def test_presence_changes_are_recorded_once(cloud: RunningCloud) -> None:
    samples = [True, True, False, False, True]
    engine: AsyncEngine = cloud.app.state.engine
    async with engine.begin() as conn:
        await conn.execute(insert(Node), [{"id": "N2", "online": True}])
        await conn.execute(insert(Desk), [{"id": "PX", "node_id": "N2", "state": "free"}])
    applier = Applier(engine.dialect.name)
    base = at(8).timestamp()
    for i, present in enumerate(samples):
        batch = TelemetryBatch(count=1, presence={"PX": ("N2", present, base + i)})
        async with engine.begin() as conn:
            result = await applier.apply(conn, [batch])
        applier.committed(result)
    # A fresh applier (a restart) must not record the unchanged value again.
    restarted = Applier(engine.dialect.name)
    async with engine.begin() as conn:
        await restarted.apply(
            conn, [TelemetryBatch(count=1, presence={"PX": ("N2", True, base + 9)})]
        )
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(PresenceChange.present, PresenceChange.ts)
                .where(PresenceChange.desk_id == "PX")
                .order_by(PresenceChange.id)
            )
        ).all()
    assert [(p, ts.timestamp()) for p, ts in rows] == [
        (True, base),
        (False, base + 2),
        (True, base + 4),
    ]


def released(
    desk: str, start: float, status: str, reason: str | None, at_hour: float, day: int = 0
) -> dict[str, Any]:
    row = booking(desk, start + 24 * day, start + 24 * day + 1, status)
    return row | {"released_at": at(at_hour, day=day), "release_reason": reason}


async def test_released_bookings_per_day_by_reason(cloud: RunningCloud) -> None:
    engine: AsyncEngine = cloud.app.state.engine
    await build_history(engine)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Booking),
            [
                released("D4", 9, "no_show", "no_show", 9.25),
                released("D4", 11, "released", "away", 11.5),
                released("D1", 14, "released", "released_at_desk", 14.5),
                released("D2", 8, "released", "displaced_by_offline_checkin", 8.1, day=1),
                released("D3", 8, "released", None, 8.2, day=1),
                # Released before the range: not counted.
                released("D4", 7, "no_show", "no_show", 7.25, day=-1),
                # A cancelled booking was never released.
                released("D4", 17, "cancelled", "away", 17.5),
            ],
        )
    two_days = {"to": (DAY + timedelta(days=2)).isoformat()}
    body = await get(cloud, "releases", level="building", bucket="day", **two_days)
    assert body["bucket"] == "day" and body["level"] == "building"
    day1, day2 = body["rows"]
    assert (day1["bucket_start"], day2["bucket_start"]) == (FROM, TO)
    assert {
        k: day1[k]
        for k in (
            "released",
            "no_show",
            "away",
            "released_at_desk",
            "displaced_by_offline_checkin",
            "other",
        )
    } == {
        "released": 3,
        "no_show": 1,
        "away": 1,
        "released_at_desk": 1,
        "displaced_by_offline_checkin": 0,
        "other": 0,
    }
    assert (day2["released"], day2["displaced_by_offline_checkin"], day2["other"]) == (2, 1, 1)
    same(body["rows"], await get_csv(cloud, "releases", level="building", bucket="day", **two_days))
    # A day without releases still has its row (zeros), so a chart has no gaps.
    z2 = [
        r
        for r in (await get(cloud, "releases", level="zone", **two_days))["rows"]
        if r["entity"] == "Z2"
    ]
    assert [r["released"] for r in z2] == [2, 1]


async def test_range_bucket_and_least_used_order(cloud: RunningCloud) -> None:
    await build_history(cloud.app.state.engine)
    two_days = {"to": (DAY + timedelta(days=2)).isoformat()}
    [whole] = (await get(cloud, "utilisation", level="building", bucket="range", **two_days))[
        "rows"
    ]
    assert (whole["bucket_start"], whole["bucket_end"]) == (FROM, two_days["to"])
    # D2's open check-in runs on through the second day: 13 + 24 of 4 × 48 desk-hours.
    assert whole["occupied_hours"] == 37.0
    assert whole["utilisation_pct"] == round(100 * 37 / 192, 2)
    assert (whole["bookings"], whole["no_shows"]) == (2, 1)
    rows = (
        await get(
            cloud, "utilisation", level="desk", bucket="range", order="utilisation", limit="3"
        )
    )["rows"]
    assert [r["entity"] for r in rows] == ["D4", "D3", "D1"]  # 0 %, 1 h, 3 h
    assert [r["utilisation_pct"] for r in rows] == sorted(r["utilisation_pct"] for r in rows)
    same(
        rows,
        await get_csv(
            cloud, "utilisation", level="desk", bucket="range", order="utilisation", limit="3"
        ),
    )
