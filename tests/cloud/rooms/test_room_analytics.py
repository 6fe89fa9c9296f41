"""Room analytics: booked vs sensed hours, in use not booked, no-shows, right-sizing, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import aiomqtt
from sqlalchemy import insert

from cloud.db.tables import ROOM_BOOKINGS, ROOM_PRESENCE_CHANGES
from cloud.rooms.analytics import right_size, sensed_spans
from cloud.settings import CloudSettings
from ruang import contract
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud, eventually, publish

from .room_helpers import ROOM_L, ROOM_S

DAY = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a past Monday


def _b(
    room: str, h0: float, h1: float, status: str, attendees: int | None = None
) -> dict[str, object]:
    return {
        "room_id": room, "person_id": "p-ayu", "status": status, "attendees": attendees,
        "starts_at": DAY + timedelta(hours=h0), "ends_at": DAY + timedelta(hours=h1),
        "created_at": DAY, "walk_up": False,
    }  # fmt: skip


async def test_booked_sensed_unbooked_hours_no_shows_and_size_per_room(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    async with cloud.app.state.engine.begin() as conn:
        await conn.execute(
            insert(ROOM_BOOKINGS),
            [
                _b(ROOM_L, 1, 3, "completed", attendees=3),  # 12 seats, 3 people: too big
                _b(ROOM_L, 4, 5, "no_show"),
                _b(ROOM_S, 2, 3, "completed", attendees=8),
            ],
        )
        # Large room: occupied 1:30-2:30 (inside the booking) and 6:00-7:00 (nobody booked);
        # an occupied reading from the day before counts from the range's start.
        changes = [
            (ROOM_L, True, 1.5), (ROOM_L, False, 2.5), (ROOM_L, True, 6), (ROOM_L, False, 7),
            (ROOM_S, True, -2), (ROOM_S, False, 0.5),
        ]  # fmt: skip
        await conn.execute(
            insert(ROOM_PRESENCE_CHANGES),
            [{"room_id": r, "occupied": o, "ts": DAY + timedelta(hours=h)} for r, o, h in changes],
        )
    params = {"from": DAY.isoformat(), "to": (DAY + timedelta(days=1)).isoformat()}
    r = await cloud.http.get("/api/v1/analytics/rooms", params=params)
    assert r.status_code == 200, r.text
    rooms = {x["room_id"]: x for x in r.json()["rooms"]}
    large, small = rooms[ROOM_L], rooms[ROOM_S]
    assert (large["booked_hours"], large["sensed_hours"], large["sensed_unbooked_hours"]) == (
        2.0, 2.0, 1.0,
    )  # fmt: skip
    assert (large["bookings"], large["no_shows"], large["right_size"]) == (1, 1, "too_big")
    assert (small["booked_hours"], small["sensed_hours"], small["sensed_unbooked_hours"]) == (
        1.0, 0.5, 0.5,
    )  # fmt: skip
    assert small["right_size"] == "fits"

    r = await cloud.http.get("/api/v1/analytics/rooms", params=params | {"format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = {row["room_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert rows[ROOM_L]["sensed_unbooked_hours"] == "1.0" and rows[ROOM_L]["no_shows"] == "1"


async def test_radar_readings_from_ingestion_become_sensed_history(
    cloud: RunningCloud, settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    await seed(cloud, settings)
    msg = contract.RoomPresence(node="ikn-demo-l1", room=ROOM_S, present=True,
                                sensor=f"{ROOM_S}-occupancy")  # fmt: skip
    await publish(publisher, msg)

    async def recorded() -> bool:
        async with cloud.app.state.engine.connect() as conn:
            return bool((await conn.execute(ROOM_PRESENCE_CHANGES.select())).all())

    await eventually(recorded)
    async with cloud.app.state.engine.connect() as conn:
        rows = (await conn.execute(ROOM_PRESENCE_CHANGES.select())).all()
    assert [(r.room_id, r.occupied) for r in rows] == [(ROOM_S, True)]
    # The room has been occupied since: sensed, and nobody booked it.
    start = rows[0].ts - timedelta(hours=1)
    params = {"from": start.isoformat(), "to": (start + timedelta(hours=3)).isoformat()}
    r = await cloud.http.get("/api/v1/analytics/rooms", params=params)
    usage = {x["room_id"]: x for x in r.json()["rooms"]}[ROOM_S]
    assert usage["booked_hours"] == 0 and usage["sensed_hours"] == usage["sensed_unbooked_hours"]


def test_sensed_spans_and_right_size_edges() -> None:
    h = [DAY + timedelta(hours=i) for i in range(6)]
    assert sensed_spans([(h[0], True), (h[1], True), (h[2], False)], h[0], h[5]) == [(h[0], h[2])]
    assert sensed_spans([(h[3], True)], h[0], h[5]) == [(h[3], h[5])]
    assert sensed_spans([(h[3], False)], h[0], h[5]) == []
    assert right_size(8, []) == "unknown"
    assert right_size(8, [9, 10]) == "too_small"
    assert right_size(8, [4]) == "fits"
    assert right_size(8, [3]) == "too_big"
