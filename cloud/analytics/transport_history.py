"""Reading what the transport reports count, for one range, from the database.

Each source is the record of what happened (docs/analytics.md, "Transport"):
the vehicles' `boarding` events (one row per event id), the stop departures the
live tracker detected from positions (`transport_stop_events`), seat reservations
decided at departure (seat service), pool-car trips from pick-up to return (car
bookings), and the schedule's names. The computations
are in cloud/analytics/transport.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.analytics.transport import (
    Boarding,
    CarTrip,
    ReservationOutcome,
    StopDeparture,
    TransportHistory,
    TripRun,
)
from cloud.db.tables import CAR_BOOKINGS, RESERVATIONS, TRIP_SEATS
from cloud.db.tables import TRANSPORT_BOARDINGS as BOARDINGS
from cloud.db.tables import TRANSPORT_ROUTES as ROUTES
from cloud.db.tables import TRANSPORT_STOP_EVENTS as STOP_EVENTS
from cloud.db.tables import TRANSPORT_STOPS as STOPS
from cloud.db.tables import TRANSPORT_TRIPS as TRIPS
from cloud.db.tables import TRANSPORT_VEHICLES as VEHICLES
from cloud.transport.schedule import timezone

# A reservation is decided at departure: the rider boarded, or it was released as a no-show.
DECIDED = ("boarded", "no_show")


async def load_transport_history(
    conn: AsyncConnection, start: datetime, end: datetime
) -> TransportHistory:
    """Everything the transport reports need for [start, end)."""
    history = TransportHistory(start=start, end=end, timezone=(await timezone(conn)).key)
    history.route_names = {
        r.route_id: r.short_name or r.route_id
        for r in await conn.execute(select(ROUTES.c.route_id, ROUTES.c.short_name))
    }
    history.stop_names = {
        s.stop_id: s.name for s in await conn.execute(select(STOPS.c.stop_id, STOPS.c.name))
    }
    await _load_rides(conn, history)
    history.reservations = [
        ReservationOutcome(route=r.route_id, no_show=r.status == "no_show")
        for r in await conn.execute(
            select(RESERVATIONS.c.status, TRIPS.c.route_id)
            .join(TRIPS, TRIPS.c.trip_id == RESERVATIONS.c.trip_id)
            .where(
                RESERVATIONS.c.status.in_(DECIDED),
                RESERVATIONS.c.departs_at >= start,
                RESERVATIONS.c.departs_at < end,
            )
        )
    ]
    history.cars = {
        v.id: v.plate
        for v in await conn.execute(
            select(VEHICLES.c.id, VEHICLES.c.plate).where(VEHICLES.c.kind == "poolcar")
        )
    }
    history.car_trips = [
        CarTrip(
            vehicle=b.vehicle_id,
            start=b.picked_up_at,
            end=b.returned_at,
            distance_m=b.distance_m or 0.0,
        )
        for b in await conn.execute(
            select(
                CAR_BOOKINGS.c.vehicle_id,
                CAR_BOOKINGS.c.picked_up_at,
                CAR_BOOKINGS.c.returned_at,
                CAR_BOOKINGS.c.distance_m,
            )
            .where(
                CAR_BOOKINGS.c.picked_up_at.is_not(None),
                CAR_BOOKINGS.c.picked_up_at < end,
                or_(CAR_BOOKINGS.c.returned_at.is_(None), CAR_BOOKINGS.c.returned_at > start),
            )
            .order_by(CAR_BOOKINGS.c.picked_up_at)
        )
    ]
    return history


async def _load_rides(conn: AsyncConnection, history: TransportHistory) -> None:
    """Allowed boardings and detected stop departures in the range, and the trip runs
    they prove (with their seats)."""
    rows = (
        await conn.execute(
            select(
                BOARDINGS.c.ts,
                BOARDINGS.c.trip_id,
                BOARDINGS.c.service_date,
                BOARDINGS.c.stop_id,
                BOARDINGS.c.vehicle_id,
                TRIPS.c.route_id,
            )
            .join(TRIPS, TRIPS.c.trip_id == BOARDINGS.c.trip_id, isouter=True)
            .where(
                BOARDINGS.c.allowed.is_(True),
                BOARDINGS.c.ts >= history.start,
                BOARDINGS.c.ts < history.end,
            )
            .order_by(BOARDINGS.c.ts)
        )
    ).all()
    history.boardings = [
        Boarding(
            ts=r.ts,
            route=r.route_id or "",
            trip=r.trip_id or "",
            service_date=r.service_date or "",
            stop=r.stop_id,
        )
        for r in rows
    ]
    # Departures detected from positions and speed (not inferred across a gap in the fixes).
    departed = (
        await conn.execute(
            select(
                STOP_EVENTS.c.trip_id,
                STOP_EVENTS.c.service_date,
                STOP_EVENTS.c.stop_id,
                STOP_EVENTS.c.route_id,
                STOP_EVENTS.c.vehicle_id,
                STOP_EVENTS.c.departure_at,
                STOP_EVENTS.c.scheduled_departure_at,
            )
            .where(
                STOP_EVENTS.c.departure_at.is_not(None),
                STOP_EVENTS.c.inferred.is_(False),
                STOP_EVENTS.c.departure_at >= history.start,
                STOP_EVENTS.c.departure_at < history.end,
            )
            .order_by(STOP_EVENTS.c.departure_at)
        )
    ).all()
    history.departures = [
        StopDeparture(
            route=d.route_id,
            trip=d.trip_id,
            stop=d.stop_id,
            scheduled=d.scheduled_departure_at,
            actual=d.departure_at,
        )
        for d in departed
    ]
    # A trip ran when the tracker saw it leave a stop or someone boarded it; its seats
    # are the capacity the seat service held for it, else that of the vehicle on it.
    vehicle_of: dict[tuple[str, str], tuple[str, str]] = {}
    for d in departed:
        vehicle_of.setdefault((d.trip_id, d.service_date), (d.route_id, d.vehicle_id))
    for r in rows:
        if r.trip_id and r.service_date and r.route_id:
            vehicle_of.setdefault((r.trip_id, r.service_date), (r.route_id, r.vehicle_id))
    if not vehicle_of:
        return
    held = {
        (s.trip_id, s.service_date): s.capacity
        for s in await conn.execute(
            select(TRIP_SEATS.c.trip_id, TRIP_SEATS.c.service_date, TRIP_SEATS.c.capacity).where(
                TRIP_SEATS.c.trip_id.in_(sorted({k[0] for k in vehicle_of}))
            )
        )
    }
    vehicles = {
        v.id: v.capacity
        for v in await conn.execute(
            select(VEHICLES.c.id, VEHICLES.c.capacity).where(
                VEHICLES.c.id.in_(sorted({v for _, v in vehicle_of.values()}))
            )
        )
    }
    history.runs = [
        TripRun(
            route=route,
            trip=trip,
            service_date=day,
            capacity=held.get((trip, day), vehicles.get(vehicle, 0)),
        )
        for (trip, day), (route, vehicle) in sorted(vehicle_of.items())
    ]
