"""One desk's day: bookings, check-ins and -outs, releases, presence and unit changes.

The day is the calendar day of the desk's site time zone. Names follow the floor
map's rule (`may_see_names` in cloud/buildings/floormap.py): only admins and
facility managers of the desk's site see who booked; nothing here returns a
NIP, a badge UID or a person id.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.site_rules import desk_rules, end_of_local_day
from cloud.buildings.floormap import current_time, may_see_names
from cloud.buildings.schemas import DeskTimeline, TimelineEntry
from cloud.db.tables import BOOKINGS, DESKS, EVENTS, PEOPLE
from cloud.db.tables import PRESENCE_CHANGES as PRESENCE
from cloud.errors import NotFound
from cloud.people import access
from cloud.people.auth import Principal

# Entries at the same instant are listed in the order things happen at a desk.
_KIND_ORDER = {
    k: i
    for i, k in enumerate(
        (
            "unit_offline",
            "unit_online",
            "booked",
            "present",
            "checked_in",
            "absent",
            "checked_out",
            "released",
            "cancelled",
        )
    )
}


async def desk_timeline(
    conn: AsyncConnection, desk_id: str, *, viewer: Principal, now: datetime | None = None
) -> DeskTimeline:
    """Today's (site time zone) bookings, check-ins/outs, releases, presence and unit changes."""
    at = now or current_time()
    if await conn.scalar(select(DESKS.c.id).where(DESKS.c.id == desk_id)) is None:
        raise NotFound(f"desk {desk_id!r} is unknown", title="Desk not found")
    names = may_see_names(viewer, (await access.desk_sites(conn, [desk_id])).get(desk_id))
    rules = await desk_rules(conn, desk_id)
    day_end = end_of_local_day(at, rules.tz)
    day_start = datetime.combine(at.astimezone(rules.tz).date(), datetime.min.time(), rules.tz)

    def today(ts: datetime | None) -> bool:
        return ts is not None and day_start <= ts < day_end

    columns: list[Any] = [BOOKINGS]
    source: Any = BOOKINGS
    if names:
        columns.append(PEOPLE.c.name.label("person_name"))
        source = BOOKINGS.join(PEOPLE, PEOPLE.c.id == BOOKINGS.c.person_id)
    entries: list[TimelineEntry] = []
    for b in await conn.execute(
        select(*columns)
        .select_from(source)
        .where(
            BOOKINGS.c.desk_id == desk_id,
            BOOKINGS.c.starts_at < day_end,
            BOOKINGS.c.ends_at > day_start,
        )
    ):
        person = b.person_name if names else None
        common: dict[str, Any] = {"booking_id": b.id, "person": person}
        entries.append(
            TimelineEntry(at=b.starts_at, kind="booked", until=b.ends_at, status=b.status, **common)
        )
        if today(b.checked_in_at):
            entries.append(TimelineEntry(at=b.checked_in_at, kind="checked_in", **common))
        if today(b.checked_out_at) and b.status == "completed":
            entries.append(TimelineEntry(at=b.checked_out_at, kind="checked_out", **common))
        if today(b.released_at):
            entries.append(
                TimelineEntry(at=b.released_at, kind="released", reason=b.release_reason, **common)
            )
        if today(b.cancelled_at):
            entries.append(TimelineEntry(at=b.cancelled_at, kind="cancelled", **common))
    # Presence drained from a backlog may repeat a value (cloud/ingest/presence_history.py):
    # a repeat is no change, so only the first of a run is shown.
    was: bool | None = None
    for p in await conn.execute(
        select(PRESENCE.c.ts, PRESENCE.c.present)
        .where(PRESENCE.c.desk_id == desk_id, PRESENCE.c.ts >= day_start, PRESENCE.c.ts < day_end)
        .order_by(PRESENCE.c.ts, PRESENCE.c.id)
    ):
        if p.present is not was:
            entries.append(TimelineEntry(at=p.ts, kind="present" if p.present else "absent"))
        was = p.present
    for e in await conn.execute(
        select(EVENTS.c.ts, EVENTS.c.payload).where(
            EVENTS.c.desk == desk_id,
            EVENTS.c.kind == "unit_status",
            EVENTS.c.ts >= day_start,
            EVENTS.c.ts < day_end,
        )
    ):
        payload = json.loads(e.payload) if isinstance(e.payload, str) else e.payload
        online = bool(payload.get("online")) if isinstance(payload, dict) else False
        entries.append(TimelineEntry(at=e.ts, kind="unit_online" if online else "unit_offline"))
    entries.sort(key=lambda x: (x.at, _KIND_ORDER[x.kind]))
    return DeskTimeline(
        desk_id=desk_id, day=day_start.date(), timezone=rules.timezone, entries=entries
    )
