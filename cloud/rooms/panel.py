"""The room panel's view: now / next / free-until and today's meetings, without names.

The tablet at a room's door opens `/panel/{room_id}?k={key}`; the key is
HMAC(server secret, "room-panel:" + room id) from the QR check-in keys
(cloud/bookings/qrcheckin.py), so a panel URL works for that one room only and
changing the secret retires every panel URL. The same family of keys with
"room:" gives the room's QR check-in code, which a person scans with a phone.

What the panel shows of a meeting: its times and whether someone checked in; its
title only when the organiser belongs to the agency the room's zone is reserved
for, or when the site allows titles on panels (`sites.room_panel_titles`). It
never shows the organiser's name.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.qrcheckin import CheckinKeys
from cloud.db.models_rooms import ACTIVE_ROOM_STATUSES
from cloud.db.tables import PEOPLE, ROOM_BOOKINGS
from cloud.errors import NotFound
from cloud.rooms.reads import room_context, state_of
from cloud.rooms.schemas import PanelMeeting, PanelSchedule

PANEL_PREFIX = "room-panel:"
CHECKIN_PREFIX = "room:"
# How far ahead the panel looks for the next meeting when today has none left.
NEXT_HORIZON = timedelta(days=7)
# Meetings after today the panel caches with the day (`later`), counted from now.
LATER_WINDOW = timedelta(hours=12)


def panel_key(keys: CheckinKeys, room_id: str) -> str:
    return keys.key(PANEL_PREFIX + room_id)


def ensure_panel(keys: CheckinKeys, room_id: str, key: str) -> None:
    """A wrong key reads like an unknown room (404), so keys cannot be probed per room."""
    if not keys.valid(PANEL_PREFIX + room_id, key):
        raise NotFound(f"room {room_id!r} is unknown", title="Room not found")


def checkin_url(keys: CheckinKeys, room_id: str) -> str:
    room = quote(room_id, safe="")
    return f"{keys.base_url}/room-checkin/{room}?k={keys.key(CHECKIN_PREFIX + room_id)}"


def panel_url(keys: CheckinKeys, room_id: str) -> str:
    return f"{keys.base_url}/panel/{quote(room_id, safe='')}?k={panel_key(keys, room_id)}"


async def schedule(
    conn: AsyncConnection, keys: CheckinKeys, room_id: str, now: datetime
) -> PanelSchedule:
    ctx = await room_context(conn, room_id)
    tz = ctx.rules.tz
    local = now.astimezone(tz)
    day_start = datetime.combine(local.date(), datetime.min.time(), tz)
    day_end = day_start + timedelta(days=1)
    # Past today's end too: a panel that goes offline late in the evening must still
    # know the meetings just after midnight.
    horizon = max(day_end, now + LATER_WINDOW)
    rows = (
        await conn.execute(
            select(ROOM_BOOKINGS, PEOPLE.c.agency)
            .select_from(ROOM_BOOKINGS.outerjoin(PEOPLE, PEOPLE.c.id == ROOM_BOOKINGS.c.person_id))
            .where(
                ROOM_BOOKINGS.c.room_id == room_id,
                ROOM_BOOKINGS.c.status.in_((*ACTIVE_ROOM_STATUSES, "completed")),
                ROOM_BOOKINGS.c.starts_at < horizon,
                ROOM_BOOKINGS.c.ends_at > day_start,
            )
            .order_by(ROOM_BOOKINGS.c.starts_at)
        )
    ).all()

    def shown(row: Any) -> PanelMeeting:
        agency = row.agency
        own = ctx.agency is not None and agency == ctx.agency
        return PanelMeeting(
            id=row.id,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            status=row.status,
            title=row.title if (ctx.panel_titles or own) else None,
            checked_in=row.checked_in_at is not None,
        )

    today = [shown(r) for r in rows if r.starts_at < day_end]
    later = [
        m
        for m in (shown(r) for r in rows if r.starts_at >= day_end)
        if m.status in ACTIVE_ROOM_STATUSES
    ]
    active = [m for m in (*today, *later) if m.status in ACTIVE_ROOM_STATUSES]
    current = next((m for m in active if m.starts_at <= now < m.ends_at), None)
    upcoming = next((m for m in active if m.starts_at > now), None)
    free_until = None if current is not None else (upcoming.starts_at if upcoming else None)
    if upcoming is None:
        # Late in the day the next meeting is tomorrow's (or after a weekend): the
        # panel still names it, but the room stays free for the rest of today.
        beyond = (
            await conn.execute(
                select(ROOM_BOOKINGS, PEOPLE.c.agency)
                .select_from(
                    ROOM_BOOKINGS.outerjoin(PEOPLE, PEOPLE.c.id == ROOM_BOOKINGS.c.person_id)
                )
                .where(
                    ROOM_BOOKINGS.c.room_id == room_id,
                    ROOM_BOOKINGS.c.status.in_(ACTIVE_ROOM_STATUSES),
                    ROOM_BOOKINGS.c.starts_at >= day_end,
                    ROOM_BOOKINGS.c.starts_at < day_end + NEXT_HORIZON,
                )
                .order_by(ROOM_BOOKINGS.c.starts_at)
                .limit(1)
            )
        ).first()
        upcoming = shown(beyond) if beyond is not None else None
    return PanelSchedule(
        room_id=ctx.id,
        room_name=ctx.name,
        capacity=ctx.capacity,
        timezone=ctx.rules.timezone,
        generated_at=now,
        occupied=ctx.occupied,
        state=state_of(ctx.occupied, current is not None),
        now=current,
        next=upcoming,
        free_until=free_until,
        today=today,
        later=later,
        checkin_url=checkin_url(keys, room_id),
    )
