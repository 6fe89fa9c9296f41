"""The rider's searches: trips leaving a stop on a service day (with where they go, when
they reach the rider's destination and how many seats are still free), and the pool
cars free for a time.

Read from the timetable (cloud.transport.schedule), the seat counts
(cloud.transport.reservations) and the car bookings: counts and cars only, never
who holds a seat or a car.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.models_transport_seats import ACTIVE_CAR_STATUSES
from cloud.db.tables import CAR_BOOKINGS
from cloud.db.tables import TRANSPORT_VEHICLES as VEHICLES
from cloud.errors import NotFound
from cloud.transport import reservations, schedule
from cloud.transport.schemas_network import FoundTrip, FreeCar
from cloud.transport.seat_facts import CapacityRule

MAX_TRIPS = 60


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def find_trips(
    conn: AsyncConnection,
    from_stop: str,
    day: date,
    *,
    to_stop: str | None,
    capacity: CapacityRule,
    after: float | None = None,
) -> list[FoundTrip]:
    """Trips of service day `day` leaving `from_stop` (at or after `after`), reaching
    `to_stop` later on when given, by departure time."""
    tz = await schedule.timezone(conn)
    zero = schedule.day_start(day, tz)
    service_date = schedule.gtfs_date(day)
    leaving = await schedule.departures_from(
        conn, from_stop, max(zero, after or zero), limit=MAX_TRIPS, horizon_s=30 * 3600
    )
    out: list[FoundTrip] = []
    for dep in leaving:
        if dep.service_date != service_date:
            continue
        plan = await schedule.trip_plan(conn, dep.trip_id, service_date)
        if plan is None:
            continue
        later = [s for s in plan.stops if s.stop_sequence > dep.stop_sequence]
        board = next(s for s in plan.stops if s.stop_sequence == dep.stop_sequence)
        alight = next((s for s in later if s.stop_id == to_stop), None) if to_stop else None
        if to_stop and alight is None:
            continue  # this trip does not take the rider there
        try:
            seats = await reservations.trip_seats(
                conn, dep.trip_id, service_date, capacity=capacity
            )
        except NotFound:
            continue
        out.append(
            FoundTrip(
                trip_id=dep.trip_id,
                service_date=service_date,
                route_id=dep.route_id,
                headsign=dep.headsign,
                from_stop=from_stop,
                from_stop_name=board.name,
                departs_at=_utc(dep.departure),
                to_stop=alight.stop_id if alight else None,
                to_stop_name=alight.name if alight else None,
                arrives_at=_utc(alight.arrival) if alight else None,
                capacity=seats.capacity,
                free=seats.free,
                waitlist=seats.waitlist,
                stops=[s.stop_id for s in plan.stops],
            )
        )
    return out


async def free_pool_cars(
    conn: AsyncConnection, start: datetime, end: datetime, site: str | None = None
) -> list[FreeCar]:
    """Pool cars (of `site`, when given) with no live booking overlapping [start, end).

    The booking itself is still decided by the database's conflict rule: a car shown
    here may be taken by someone else first, and the booking then answers 409.
    """
    busy = select(CAR_BOOKINGS.c.vehicle_id).where(
        and_(
            CAR_BOOKINGS.c.status.in_(ACTIVE_CAR_STATUSES),
            CAR_BOOKINGS.c.starts_at < end,
            CAR_BOOKINGS.c.ends_at > start,
        )
    )
    stmt = (
        select(VEHICLES)
        .where(
            VEHICLES.c.kind == "poolcar",
            VEHICLES.c.state != "offline",
            VEHICLES.c.id.not_in(busy),
        )
        .order_by(VEHICLES.c.id)
    )
    if site is not None:
        stmt = stmt.where(VEHICLES.c.site_id == site)
    return [
        FreeCar(id=v.id, label=v.label, seats=v.seats, plate=v.plate, site_id=v.site_id)
        for v in await conn.execute(stmt)
    ]
