"""Booking reads: one booking, listings, availability search and desk locations for exports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Row, Text, and_, bindparam, exists, func, literal, select, text
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.schemas import AvailableRoom, BookingPublic
from cloud.db.models import ACTIVE_BOOKING_STATUSES
from cloud.db.tables import BOOKINGS, BUILDINGS, DESKS, FLOORS, ROOMS, ZONES
from cloud.errors import NotFound


async def get_booking(conn: AsyncConnection, booking_id: int) -> Row[Any]:
    """One booking row; 404 problem when there is none."""
    row = (await conn.execute(select(BOOKINGS).where(BOOKINGS.c.id == booking_id))).first()
    if row is None:
        raise NotFound(f"booking {booking_id} is unknown", title="Booking not found")
    return row


def booking_filter(
    person: str | None, desk: str | None, start: datetime | None, end: datetime | None
) -> list[Any]:
    where: list[Any] = []
    if person is not None:
        where.append(BOOKINGS.c.person_id == person)
    if desk is not None:
        where.append(BOOKINGS.c.desk_id == desk)
    if start is not None:
        where.append(BOOKINGS.c.ends_at > start)
    if end is not None:
        where.append(BOOKINGS.c.starts_at < end)
    return where


async def list_bookings(
    conn: AsyncConnection,
    *,
    person: str | None = None,
    desk: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> list[BookingPublic]:
    stmt = (
        select(
            BOOKINGS,
            DESKS.c.label.label("desk_label"),
            FLOORS.c.name.label("floor_name"),
            ZONES.c.name.label("zone_name"),
        )
        .select_from(
            BOOKINGS.outerjoin(DESKS, DESKS.c.id == BOOKINGS.c.desk_id)
            .outerjoin(FLOORS, FLOORS.c.id == DESKS.c.floor_id)
            .outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id)
        )
        .where(*booking_filter(person, desk, start, end))
        .order_by(BOOKINGS.c.starts_at, BOOKINGS.c.id)
        .limit(limit)
    )
    return [BookingPublic.model_validate(r._mapping) for r in await conn.execute(stmt)]


def _features_clause(conn: AsyncConnection, column: Any, features: Sequence[str]) -> list[Any]:
    if not features:
        return []
    if conn.dialect.name == "postgresql":
        return [sql_cast(column, JSONB).contains(list(features))]
    # SQLite: one json_each probe per requested feature (there are at most four).
    return [
        exists(
            select(text("1"))
            .select_from(func.json_each(column).table_valued("value"))
            .where(text(f"value = :feature_{i}").bindparams(bindparam(f"feature_{i}", f)))
        )
        for i, f in enumerate(features)
    ]


_DESK_FIELDS = ("id", "label", "mode", "features", "floor_id", "zone_id")
_ROOMS = TypeAdapter(list[AvailableRoom])
_WHEN = TypeAdapter(datetime)


def _desks_as_json(conn: AsyncConnection, rows: Any) -> Any:
    """One JSON array of AvailableDesk objects, built by the database from `rows` (a
    subquery ordered by desk id), so no desk passes through Python one by one."""
    c = rows.c
    pairs: list[Any] = []
    for name in (*_DESK_FIELDS, "reserved_for_agency", "x", "y", "w", "h"):
        pairs += [literal(name), c[name]]
    if conn.dialect.name == "postgresql":
        obj = func.json_build_object(*pairs)
        # As text: the driver would otherwise decode the array into Python objects.
        agg = func.json_agg(aggregate_order_by(obj, c.id))
        return sql_cast(func.coalesce(agg, text("'[]'::json")), Text)
    # SQLite keeps JSON as text: json() embeds the features array as an array, and
    # json_group_array keeps the subquery's order.
    pairs[pairs.index(c.features)] = func.json(c.features)
    return func.json_group_array(func.json_object(*pairs))


async def availability(
    conn: AsyncConnection,
    *,
    start: datetime,
    end: datetime,
    floor: str | None = None,
    zone: str | None = None,
    features: Sequence[str] = (),
    capacity: int | None = None,
) -> str:
    """Desks with no active booking overlapping [start, end), as AvailabilityPublic JSON.

    One index-backed query; the database also writes the desks' JSON (a whole
    building is thousands of desks, and validating and encoding each in Python
    was most of the time; docs/performance.md). The shape is AvailabilityPublic's
    (tests/cloud/bookings/test_availability_json.py pins it).
    """
    taken = exists().where(
        BOOKINGS.c.desk_id == DESKS.c.id,
        BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES),
        BOOKINGS.c.starts_at < end,
        BOOKINGS.c.ends_at > start,
    )
    where: list[Any] = [DESKS.c.mode != "unavailable", ~taken]
    room_where: list[Any] = []
    if floor is not None:
        where.append(DESKS.c.floor_id == floor)
        room_where.append(ZONES.c.floor_id == floor)
    if zone is not None:
        where.append(DESKS.c.zone_id == zone)
        room_where.append(ROOMS.c.zone_id == zone)
    where += _features_clause(conn, DESKS.c.features, features)
    free = (
        select(
            *(DESKS.c[name] for name in _DESK_FIELDS),
            ZONES.c.reserved_for_agency,
            DESKS.c.x,
            DESKS.c.y,
            DESKS.c.w,
            DESKS.c.h,
        )
        .select_from(DESKS.outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id))
        .where(and_(*where))
        .order_by(DESKS.c.id)
        .subquery()
    )
    desks_json = await conn.scalar(select(_desks_as_json(conn, free)))
    if capacity is not None:
        room_where.append(ROOMS.c.capacity >= capacity)
    room_rows = await conn.execute(
        select(
            ROOMS.c.id,
            ROOMS.c.name,
            ROOMS.c.capacity,
            ROOMS.c.features,
            ZONES.c.floor_id,
            ROOMS.c.zone_id,
        )
        .select_from(ROOMS.join(ZONES, ZONES.c.id == ROOMS.c.zone_id))
        .where(*room_where)
        .order_by(ROOMS.c.id)
    )
    rooms = _ROOMS.dump_json([AvailableRoom.model_validate(r._mapping) for r in room_rows])
    return (
        f'{{"start":{_WHEN.dump_json(start).decode()},"end":{_WHEN.dump_json(end).decode()},'
        f'"desks":{desks_json},"rooms":{rooms.decode()}}}'
    )


async def desk_places(conn: AsyncConnection, desk_ids: Sequence[str]) -> dict[str, str]:
    """A human location per desk ("Gedung A1, Lantai 1, Zona X") for exports."""
    if not desk_ids:
        return {}
    rows = await conn.execute(
        select(
            DESKS.c.id,
            BUILDINGS.c.name.label("building"),
            FLOORS.c.name.label("floor"),
            ZONES.c.name.label("zone"),
        )
        .select_from(
            DESKS.outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id)
            .outerjoin(FLOORS, FLOORS.c.id == DESKS.c.floor_id)
            .outerjoin(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id)
        )
        .where(DESKS.c.id.in_(list(set(desk_ids))))
    )
    return {r.id: ", ".join(p for p in (r.building, r.floor, r.zone) if p) or r.id for r in rows}
