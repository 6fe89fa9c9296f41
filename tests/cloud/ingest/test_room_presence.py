"""Room sensors end to end: `room_presence` over the real broker -> rooms.occupied -> map/live."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import aiomqtt
from sqlalchemy import Table, func, select

from cloud.db.models import Room
from cloud.live.hub import LiveHub
from cloud.settings import CloudSettings
from cloud.telemetry import lineprotocol
from ruang import contract
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud, eventually, publish

ROOMS = cast(Table, Room.__table__)
NODE = "ikn-demo-l1"
ROOM = "A1-L1-R1"
SENSOR = "A1-L1-R1-occupancy"


async def _room(cloud: RunningCloud) -> dict[str, Any]:
    r = await cloud.http.get("/api/v1/floors/A1-L1/map")
    assert r.status_code == 200, r.text
    return cast(dict[str, Any], {room["id"]: room for room in r.json()["rooms"]}[ROOM])


async def _changed_at(cloud: RunningCloud) -> datetime | None:
    async with cloud.app.state.engine.connect() as conn:
        return cast(
            datetime | None,
            await conn.scalar(select(ROOMS.c.occupied_changed_at).where(ROOMS.c.id == ROOM)),
        )


def _reading(present: bool, room: str = ROOM) -> contract.RoomPresence:
    return contract.RoomPresence(node=NODE, room=room, present=present, sensor=SENSOR)


async def test_room_presence_turns_the_room_occupied_on_the_map_and_back_to_free(
    cloud: RunningCloud, settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    await seed(cloud, settings)
    assert (await _room(cloud))["state"] is None
    hub: LiveHub = cloud.app.state.live
    with hub.subscribe(set(), {ROOM}) as sub:
        await publish(publisher, _reading(True))
        batch = await sub.next(coalesce_s=0.01, idle_s=15)
        assert batch is not None and batch.rooms == {ROOM} and not batch.desks
    # Announced after the commit: the map already shows it.
    assert (await _room(cloud))["state"] == "occupied"
    occupied_at = await _changed_at(cloud)
    assert occupied_at is not None

    # A repeated reading (the radar's periodic re-assert) is not a change.
    received = cloud.ingestor.stats.received
    await publish(publisher, _reading(True))

    async def repeat_applied() -> bool:
        return cloud.ingestor.stats.applied >= received + 1

    await eventually(repeat_applied)
    assert await _changed_at(cloud) == occupied_at

    await publish(publisher, _reading(False))

    async def free() -> bool:
        return (await _room(cloud))["state"] == "free"

    await eventually(free)
    freed_at = await _changed_at(cloud)
    assert freed_at is not None and freed_at >= occupied_at


async def test_unknown_room_is_counted_as_rejected_and_not_created(
    cloud: RunningCloud, settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    await seed(cloud, settings)
    async with cloud.app.state.engine.connect() as conn:
        rooms_before = await conn.scalar(select(func.count()).select_from(ROOMS))
    await publish(publisher, _reading(True, room="NO-SUCH-ROOM"))

    async def rejected() -> bool:
        return cloud.ingestor.stats.rejected.get("unknown_resource", 0) >= 1

    await eventually(rejected)
    async with cloud.app.state.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ROOMS)) == rooms_before
    assert (await _room(cloud))["state"] is None


def test_room_presence_has_its_own_line_protocol_series() -> None:
    msg = contract.RoomPresence(node=NODE, room=ROOM, present=True, sensor=SENSOR, ts=1.5)
    assert lineprotocol.for_telemetry(msg, str) == (
        "room_presence,node=ikn-demo-l1,room=A1-L1-R1,sensor=A1-L1-R1-occupancy "
        "present=1i 1500000000"
    )
