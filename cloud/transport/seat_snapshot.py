"""The seats and car bookings a vehicle's node needs in its signed snapshot.

The ridesedge snapshot builder calls `vehicle_snapshot_parts(conn, vehicle_id, day)`
for a vehicle node: the trip instances planned on that vehicle for the service
day (with capacity and confirmed seats at issue time), the confirmed and boarded
reservations on them (person ids only, as the boarding decision needs), and the
vehicle's approved or picked-up pool-car bookings around that day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import CAR_BOOKINGS, RESERVATIONS, TRIP_SEATS
from cloud.transport import schedule
from ruang.contract import SnapshotCarBooking, SnapshotSeat, SnapshotTrip

# Car bookings this far either side of the day ride along: a car picked up the
# evening before, or booked just after midnight, still opens.
CAR_MARGIN = timedelta(hours=12)


async def vehicle_snapshot_parts(
    conn: AsyncConnection, vehicle_id: str, day: date | str
) -> tuple[list[SnapshotTrip], list[SnapshotSeat], list[SnapshotCarBooking]]:
    service_date = schedule.gtfs_date(schedule.as_date(day))
    trips = (
        await conn.execute(
            select(TRIP_SEATS)
            .where(TRIP_SEATS.c.vehicle_id == vehicle_id, TRIP_SEATS.c.service_date == service_date)
            .order_by(TRIP_SEATS.c.departs_at)
        )
    ).all()
    snap_trips = [
        SnapshotTrip(
            trip=t.trip_id,
            service_date=t.service_date,
            start=t.departs_at.timestamp(),
            end=t.arrives_at.timestamp(),
            capacity=t.capacity,
            reserved=t.confirmed,
        )
        for t in trips
    ]
    seats: list[SnapshotSeat] = []
    if trips:
        rows = await conn.execute(
            select(RESERVATIONS)
            .where(
                RESERVATIONS.c.service_date == service_date,
                RESERVATIONS.c.trip_id.in_([t.trip_id for t in trips]),
                RESERVATIONS.c.status.in_(("confirmed", "boarded")),
                RESERVATIONS.c.walk_on.is_(False),
            )
            .order_by(RESERVATIONS.c.id)
        )
        seats = [
            SnapshotSeat(
                id=str(r.id),
                person=r.person_id,
                trip=r.trip_id,
                service_date=r.service_date,
                from_stop=r.from_stop,
            )
            for r in rows.all()
        ]
    tz: ZoneInfo = await schedule.timezone(conn)
    d = schedule.as_date(day)
    day_start = datetime(d.year, d.month, d.day, tzinfo=tz)
    cars = await conn.execute(
        select(CAR_BOOKINGS)
        .where(
            CAR_BOOKINGS.c.vehicle_id == vehicle_id,
            # A car still out stays in (its return tap must work however late it is).
            or_(
                CAR_BOOKINGS.c.status == "picked_up",
                and_(
                    CAR_BOOKINGS.c.status == "approved",
                    CAR_BOOKINGS.c.starts_at < day_start + timedelta(days=1) + CAR_MARGIN,
                    CAR_BOOKINGS.c.ends_at > day_start - CAR_MARGIN,
                ),
            ),
        )
        .order_by(CAR_BOOKINGS.c.starts_at)
    )
    car_bookings = [
        SnapshotCarBooking(
            id=str(c.id),
            person=c.person_id,
            start=c.starts_at.timestamp(),
            end=c.ends_at.timestamp(),
        )
        for c in cars.all()
    ]
    return snap_trips, seats, car_bookings
