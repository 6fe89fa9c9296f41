"""Room reads: a room and its site's rules, room states now, availability, booking listings.

A room reaches its site through zone -> floor -> building -> site. Its state now
joins the room sensor's latest reading with the booking holding it now:
`in_use_not_booked` is a room the radar senses occupied that nobody booked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.reads import _features_clause
from cloud.bookings.site_rules import SiteRules
from cloud.db.models_rooms import ACTIVE_ROOM_STATUSES
from cloud.db.tables import BUILDINGS, FLOORS, PEOPLE, ROOM_BOOKINGS, ROOMS, SITES, ZONES
from cloud.errors import NotFound
from cloud.rooms.schemas import RoomBookingPublic, RoomPublic, RoomState

ROOM_SITE = select(
    ROOMS.c.id,
    ROOMS.c.name,
    ROOMS.c.capacity,
    ROOMS.c.features,
    ROOMS.c.occupied,
    ROOMS.c.zone_id,
    ZONES.c.floor_id,
    ZONES.c.reserved_for_agency,
    BUILDINGS.c.site_id,
    SITES.c.timezone,
    SITES.c.checkin_grace_min,
    SITES.c.away_release_min,
    SITES.c.max_booking_hours,
    SITES.c.max_days_ahead,
    SITES.c.room_panel_titles,
).select_from(
    ROOMS.join(ZONES, ZONES.c.id == ROOMS.c.zone_id)
    .join(FLOORS, FLOORS.c.id == ZONES.c.floor_id)
    .outerjoin(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id)
    .outerjoin(SITES, SITES.c.id == BUILDINGS.c.site_id)
)


@dataclass(frozen=True)
class RoomContext:
    id: str
    name: str
    capacity: int
    site_id: str | None
    agency: str | None
    rules: SiteRules
    max_booking_hours: int
    max_days_ahead: int
    panel_titles: bool
    occupied: bool | None


def _context(row: Any) -> RoomContext:
    rules = (
        SiteRules()
        if row.timezone is None
        else SiteRules(row.timezone, int(row.checkin_grace_min), int(row.away_release_min))
    )
    return RoomContext(
        id=row.id,
        name=row.name,
        capacity=int(row.capacity),
        site_id=row.site_id,
        agency=row.reserved_for_agency,
        rules=rules,
        max_booking_hours=int(row.max_booking_hours or 10),
        max_days_ahead=int(row.max_days_ahead or 14),
        panel_titles=bool(row.room_panel_titles),
        occupied=row.occupied,
    )


async def room_context(conn: AsyncConnection, room_id: str) -> RoomContext:
    row = (await conn.execute(ROOM_SITE.where(ROOMS.c.id == room_id))).first()
    if row is None:
        raise NotFound(f"room {room_id!r} is unknown", title="Room not found")
    return _context(row)


async def room_sites(conn: AsyncConnection, room_ids: Sequence[str]) -> dict[str, str | None]:
    if not room_ids:
        return {}
    rows = await conn.execute(ROOM_SITE.where(ROOMS.c.id.in_(list(set(room_ids)))))
    return {r.id: r.site_id for r in rows}


async def person_exists(conn: AsyncConnection, person_id: str) -> Any:
    row = (
        await conn.execute(select(PEOPLE.c.id, PEOPLE.c.agency).where(PEOPLE.c.id == person_id))
    ).first()
    if row is None:
        raise NotFound(f"person {person_id!r} is unknown", title="Person not found")
    return row


async def get_room_booking(conn: AsyncConnection, booking_id: int) -> RoomBookingPublic:
    row = (
        await conn.execute(select(ROOM_BOOKINGS).where(ROOM_BOOKINGS.c.id == booking_id))
    ).first()
    if row is None:
        raise NotFound(f"room booking {booking_id} is unknown", title="Room booking not found")
    return RoomBookingPublic.model_validate(row._mapping)


def state_of(occupied: bool | None, booked_now: bool) -> RoomState:
    if booked_now:
        return "booked_in_use" if occupied else "booked_empty"
    if occupied is None:
        return "unknown"
    return "in_use_not_booked" if occupied else "free"


def _active_at(start: datetime, end: datetime) -> Any:
    return exists().where(
        ROOM_BOOKINGS.c.room_id == ROOMS.c.id,
        ROOM_BOOKINGS.c.status.in_(ACTIVE_ROOM_STATUSES),
        ROOM_BOOKINGS.c.starts_at < end,
        ROOM_BOOKINGS.c.ends_at > start,
    )


def room_booked_now(now: datetime) -> Any:
    """SQL: whether an active booking holds the row's room (ROOMS.c.id) at `now`."""
    return _active_at(now, now + timedelta(microseconds=1))


async def rooms_now(
    conn: AsyncConnection, now: datetime, where: Sequence[Any] = ()
) -> list[RoomPublic]:
    """Rooms matching `where` with their state now: one query."""
    booked_now = room_booked_now(now).label("booked_now")
    rows = await conn.execute(
        select(
            ROOMS.c.id,
            ROOMS.c.name,
            ROOMS.c.capacity,
            ROOMS.c.features,
            ROOMS.c.occupied,
            ROOMS.c.zone_id,
            ZONES.c.floor_id,
            booked_now,
        )
        .select_from(ROOMS.join(ZONES, ZONES.c.id == ROOMS.c.zone_id))
        .where(*where)
        .order_by(ROOMS.c.id)
    )
    return [
        RoomPublic(
            id=r.id,
            name=r.name,
            capacity=r.capacity,
            features=list(r.features or []),
            floor_id=r.floor_id,
            zone_id=r.zone_id,
            occupied=r.occupied,
            state=state_of(r.occupied, bool(r.booked_now)),
        )
        for r in rows
    ]


async def available_rooms(
    conn: AsyncConnection,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    capacity: int | None = None,
    floor: str | None = None,
    features: Sequence[str] = (),
) -> list[RoomPublic]:
    """Rooms with no active booking overlapping [start, end) that match the filters."""
    where: list[Any] = [~_active_at(start, end)]
    if capacity is not None:
        where.append(ROOMS.c.capacity >= capacity)
    if floor is not None:
        where.append(ZONES.c.floor_id == floor)
    where += _features_clause(conn, ROOMS.c.features, features)
    return await rooms_now(conn, now, where)


async def list_room_bookings(
    conn: AsyncConnection,
    *,
    person: str | None = None,
    room: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    active_only: bool = False,
    limit: int = 1000,
) -> list[RoomBookingPublic]:
    where: list[Any] = []
    if person is not None:
        where.append(ROOM_BOOKINGS.c.person_id == person)
    if room is not None:
        where.append(ROOM_BOOKINGS.c.room_id == room)
    if start is not None:
        where.append(ROOM_BOOKINGS.c.ends_at > start)
    if end is not None:
        where.append(ROOM_BOOKINGS.c.starts_at < end)
    if active_only:
        where.append(ROOM_BOOKINGS.c.status.in_(ACTIVE_ROOM_STATUSES))
    rows = await conn.execute(
        select(ROOM_BOOKINGS)
        .where(*where)
        .order_by(ROOM_BOOKINGS.c.starts_at, ROOM_BOOKINGS.c.id)
        .limit(limit)
    )
    return [RoomBookingPublic.model_validate(r._mapping) for r in rows]
