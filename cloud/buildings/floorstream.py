"""The floor map's live stream: Server-Sent Events with the desks and rooms that changed.

Changes come from the live hub (cloud/live/hub.py); each batch is re-read from
the database with the floor map's own queries (cloud/buildings/floormap.py), so
a streamed desk has exactly the state and privacy of the map's JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.buildings.floormap import count, current_time, map_desks, map_rooms
from cloud.buildings.schemas import MapUpdate
from cloud.db.tables import DESKS, ROOMS, ZONES
from cloud.live.hub import LiveHub

# SSE: changes within this window go out as one event; a comment keeps proxies
# and the browser's EventSource from timing the idle connection out.
COALESCE_S = 0.2
KEEPALIVE_S = 15.0


def _sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


async def floor_stream(
    engine: AsyncEngine,
    hub: LiveHub,
    floor_id: str,
    *,
    names: bool,
    coalesce_s: float = COALESCE_S,
    keepalive_s: float = KEEPALIVE_S,
) -> AsyncIterator[str]:
    """SSE text for one floor: `desks` events with changed desks and rooms, until the hub closes.

    Each event is re-read from the database (a connection per event, none held
    while idle) and carries the changed desks and rooms of this floor plus the
    counts of the whole floor. Desks and rooms added to the floor after the stream started are not
    followed; a client reconnecting (EventSource does) picks them up.
    """
    async with engine.connect() as conn:
        desk_ids = set(await conn.scalars(select(DESKS.c.id).where(DESKS.c.floor_id == floor_id)))
        room_ids = set(
            await conn.scalars(
                select(ROOMS.c.id)
                .join(ZONES, ZONES.c.id == ROOMS.c.zone_id)
                .where(ZONES.c.floor_id == floor_id)
            )
        )
    with hub.subscribe(desk_ids, room_ids) as subscription:
        # A comment: invisible to EventSource, but tells a client the
        # subscription is in place before it acts.
        yield ": subscribed\n\n"
        while True:
            batch = await subscription.next(coalesce_s=coalesce_s, idle_s=keepalive_s)
            if batch is None:
                return
            if batch.idle:
                yield ": keep-alive\n\n"
                continue
            if batch.resync:
                yield _sse("resync", "{}")
                continue
            async with engine.connect() as conn:
                desks = await map_desks(
                    conn, [DESKS.c.floor_id == floor_id], current_time(), names=names
                )
                rooms = await map_rooms(conn, [ROOMS.c.id.in_(batch.rooms)]) if batch.rooms else []
            changed = [d for d in desks if d.id in batch.desks]
            if changed or rooms:
                update = MapUpdate(desks=changed, rooms=rooms, counts=count(desks))
                yield _sse("desks", update.model_dump_json())
