"""Room no-shows by radar over the real broker, and "in use, not booked" on the API and map."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt

from cloud.rooms.noshow import room_noshow_pass
from cloud.settings import CloudSettings
from ruang import contract
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud, eventually, publish

from .room_helpers import ROOM_L, ROOM_S, body, notifications

NODE = "ikn-demo-l1"
GRACE = timedelta(minutes=15)  # the sample site's check-in grace


def _reading(room: str, present: bool) -> contract.RoomPresence:
    return contract.RoomPresence(node=NODE, room=room, present=present, sensor=f"{room}-occupancy")


async def _rooms(cloud: RunningCloud) -> dict[str, Any]:
    r = await cloud.http.get("/api/v1/rooms", params={"floor": "A1-L1"})
    assert r.status_code == 200, r.text
    return {room["id"]: room for room in r.json()}


async def _book_now(cloud: RunningCloud, room: str, person: str) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0)
    when = (start.isoformat(), (start + timedelta(hours=1)).isoformat())
    r = await cloud.http.post("/api/v1/room-bookings", json=body(room, person, when))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _status(cloud: RunningCloud, booking_id: int) -> str:
    r = await cloud.http.get("/api/v1/room-bookings")
    return str({b["id"]: b for b in r.json()}[booking_id]["status"])


async def test_an_empty_booked_room_is_warned_then_released_and_a_sensed_one_is_kept(
    cloud: RunningCloud, settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    await seed(cloud, settings)
    engine = cloud.app.state.engine
    await publish(publisher, _reading(ROOM_S, False))
    await publish(publisher, _reading(ROOM_L, False))

    async def both_read() -> bool:
        rooms = await _rooms(cloud)
        return rooms[ROOM_S]["occupied"] is False and rooms[ROOM_L]["occupied"] is False

    await eventually(both_read)
    empty = await _book_now(cloud, ROOM_S, "p-ayu")
    used = await _book_now(cloud, ROOM_L, "p-budi")
    start = datetime.fromisoformat(empty["starts_at"])
    assert (await _rooms(cloud))[ROOM_S]["state"] == "booked_empty"

    # People walk into the large room: the radar's reading marks the meeting attended.
    await publish(publisher, _reading(ROOM_L, True))

    async def sensed() -> bool:
        return (await _rooms(cloud))[ROOM_L]["state"] == "booked_in_use"

    await eventually(sensed)

    # Before half the grace: nothing happens.
    assert await room_noshow_pass(engine, start + GRACE / 2 - timedelta(seconds=1)) == (0, 0)
    # Half the grace: one warning to the organiser, and only one however often it runs.
    assert await room_noshow_pass(engine, start + GRACE / 2 + timedelta(seconds=1)) == (1, 0)
    assert await room_noshow_pass(engine, start + GRACE / 2 + timedelta(seconds=2)) == (0, 0)
    [warning] = await notifications(cloud, "p-ayu", "room_noshow_warning")
    assert warning.data["room"] == "Ruang Rapat 1.1"
    assert datetime.fromisoformat(warning.data["release_at"]) == start + GRACE
    assert await notifications(cloud, "p-budi", "room_noshow_warning") == []

    # The grace over: the empty room is released, the attended one kept.
    assert await room_noshow_pass(engine, start + GRACE + timedelta(seconds=1)) == (0, 1)
    assert await _status(cloud, empty["id"]) == "no_show"
    assert await _status(cloud, used["id"]) == "booked"
    assert len(await notifications(cloud, "p-ayu", "room_released")) == 1
    # The released slot can be booked again.
    rest = (datetime.now(UTC) + timedelta(minutes=1)).replace(microsecond=0)
    again = await cloud.http.post(
        "/api/v1/room-bookings",
        json=body(ROOM_S, "p-budi", (rest.isoformat(), empty["ends_at"])),
    )
    assert again.status_code == 201, again.text


async def test_a_room_without_a_radar_reading_is_never_released(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    booking = await _book_now(cloud, "A1-L2-R1", "p-ayu")
    start = datetime.fromisoformat(booking["starts_at"])
    assert await room_noshow_pass(cloud.app.state.engine, start + 3 * GRACE) == (0, 0)
    assert await _status(cloud, booking["id"]) == "booked"


async def test_a_sensed_room_nobody_booked_shows_in_use_not_booked_on_api_and_map(
    cloud: RunningCloud, settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    await seed(cloud, settings)
    await publish(publisher, _reading(ROOM_S, True))

    async def in_use() -> bool:
        return (await _rooms(cloud))[ROOM_S]["state"] == "in_use_not_booked"

    await eventually(in_use)
    floor = (await cloud.http.get("/api/v1/floors/A1-L1/map")).json()
    room = {r["id"]: r for r in floor["rooms"]}[ROOM_S]
    assert room["in_use_not_booked"] is True and room["booked"] is False
    # Booking it turns the state into a booked meeting in use.
    await _book_now(cloud, ROOM_S, "p-ayu")
    assert (await _rooms(cloud))[ROOM_S]["state"] == "booked_in_use"
    floor = (await cloud.http.get("/api/v1/floors/A1-L1/map")).json()
    room = {r["id"]: r for r in floor["rooms"]}[ROOM_S]
    assert room["in_use_not_booked"] is False and room["booked"] is True
