"""Pool-car trip logs: positions kept while a car is out, distance and trace on return.

Only fixes that fall into a booking's use are kept (a pool car parked at its depot
is nobody's business): `record_car_position` stores a fix when the car has an
approved, picked-up or returned booking whose use covers its time. Fixes may
arrive out of order with the pick-up and return events (a car's node drains its
backlog after a dead zone), so a fix reaching a returned booking updates its
log, and the log counts only fixes between pick-up and return.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import CAR_BOOKINGS, CAR_POSITIONS
from cloud.transport.schemas_cars import CarTripPublic, TracePoint

EARTH_RADIUS_M = 6_371_008.8
# A car may be picked up a little before its booked start: fixes from then count.
EARLY_PICKUP = timedelta(hours=1)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def path_length_m(points: Sequence[tuple[float, float]]) -> float:
    return sum(haversine_m(a[0], a[1], b[0], b[1]) for a, b in itertools.pairwise(points))


async def record_car_position(
    conn: AsyncConnection, vehicle_id: str, ts: datetime, lat: float, lon: float
) -> bool:
    """Keeps a pool car's fix when it falls into a booking's use; True when kept.

    Called by the live-tracking service for every fix of a pool car, on its own
    transaction. A replayed fix (same booking and time) is a no-op.
    """
    in_use = and_(
        CAR_BOOKINGS.c.vehicle_id == vehicle_id,
        or_(
            and_(CAR_BOOKINGS.c.status == "picked_up", CAR_BOOKINGS.c.picked_up_at <= ts),
            and_(
                CAR_BOOKINGS.c.status == "returned",
                CAR_BOOKINGS.c.picked_up_at <= ts,
                CAR_BOOKINGS.c.returned_at >= ts,
            ),
            # Pick-up event not applied yet (backlog): fixes around the booked time wait.
            and_(
                CAR_BOOKINGS.c.status == "approved",
                CAR_BOOKINGS.c.starts_at <= ts + EARLY_PICKUP,
                CAR_BOOKINGS.c.ends_at >= ts,
            ),
        ),
    )
    booking = (
        await conn.execute(
            select(CAR_BOOKINGS.c.id, CAR_BOOKINGS.c.status)
            .where(in_use)
            .order_by(CAR_BOOKINGS.c.starts_at.desc())
            .limit(1)
        )
    ).first()
    if booking is None:
        return False
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(
        make(CAR_POSITIONS)
        .values(booking_id=booking.id, vehicle_id=vehicle_id, ts=ts, lat=lat, lon=lon)
        .on_conflict_do_nothing()
    )
    if booking.status == "returned":
        await finish_trip_log(conn, booking.id)
    return True


async def _trace(conn: AsyncConnection, booking_id: int) -> list[Any]:
    rows = await conn.execute(
        select(CAR_POSITIONS.c.ts, CAR_POSITIONS.c.lat, CAR_POSITIONS.c.lon)
        .where(CAR_POSITIONS.c.booking_id == booking_id)
        .order_by(CAR_POSITIONS.c.ts)
    )
    return list(rows.all())


async def finish_trip_log(conn: AsyncConnection, booking_id: int) -> float:
    """Drops fixes outside pick-up..return and writes the distance; returns it (metres)."""
    booking = (
        await conn.execute(select(CAR_BOOKINGS).where(CAR_BOOKINGS.c.id == booking_id))
    ).one()
    await conn.execute(
        delete(CAR_POSITIONS).where(
            CAR_POSITIONS.c.booking_id == booking_id,
            or_(
                CAR_POSITIONS.c.ts < booking.picked_up_at,
                CAR_POSITIONS.c.ts > booking.returned_at,
            ),
        )
    )
    points = await _trace(conn, booking_id)
    distance = path_length_m([(p.lat, p.lon) for p in points])
    await conn.execute(
        update(CAR_BOOKINGS).where(CAR_BOOKINGS.c.id == booking_id).values(distance_m=distance)
    )
    return distance


async def car_trips(
    conn: AsyncConnection,
    *,
    visible: ColumnElement[Any] | None,
    vehicle_id: str | None,
    booking_id: int | None,
    since: datetime | None,
    until: datetime | None,
    with_trace: bool,
    limit: int,
) -> list[CarTripPublic]:
    """Trip logs of returned bookings, newest first."""
    stmt = select(CAR_BOOKINGS).where(CAR_BOOKINGS.c.status == "returned")
    if visible is not None:
        stmt = stmt.where(visible)
    if booking_id is not None:
        stmt = stmt.where(CAR_BOOKINGS.c.id == booking_id)
    if vehicle_id is not None:
        stmt = stmt.where(CAR_BOOKINGS.c.vehicle_id == vehicle_id)
    if since is not None:
        stmt = stmt.where(CAR_BOOKINGS.c.returned_at >= since)
    if until is not None:
        stmt = stmt.where(CAR_BOOKINGS.c.picked_up_at < until)
    rows = (await conn.execute(stmt.order_by(CAR_BOOKINGS.c.returned_at.desc()).limit(limit))).all()
    out: list[CarTripPublic] = []
    for row in rows:
        points = await _trace(conn, row.id)
        out.append(
            CarTripPublic(
                booking_id=row.id,
                vehicle_id=row.vehicle_id,
                person_id=row.person_id,
                destination=row.destination,
                started_at=row.picked_up_at,
                ended_at=row.returned_at,
                distance_m=row.distance_m or 0.0,
                positions=len(points),
                trace=[TracePoint(ts=p.ts, lat=p.lat, lon=p.lon) for p in points]
                if with_trace
                else None,
            )
        )
    return out
