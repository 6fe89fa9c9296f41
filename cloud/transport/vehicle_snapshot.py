"""The vehicle sections of a vehicle node's signed snapshot (cloud/fleet/snapshots.py signs it).

A node is a vehicle node when a vehicle (`transport_vehicles.node_id`) is bound
to it. Its snapshot then carries what the node needs to decide taps at the door
alone (edge/boarding.py, edge/poolcar.py):

- `vehicle`: id, kind, capacity;
- a shuttle: `trips` it runs today and tomorrow (service days in the schedule's
  time zone) — those whose seat counter names the vehicle (`transport_trip_seats.
  vehicle_id`) or whose GTFS `block_id` is the vehicle id — each with capacity,
  confirmed reservations and its stops with coordinates (the node infers the
  boarding stop from its fix); `seats`: the confirmed reservations on them;
  `badges`: every active badge of an ASN and of a guest whose pass is valid (the
  shuttle is a shared service for every agency);
- a pool car: `car_bookings` approved (or picked up) around today, and the
  badges of their holders only.

The snapshot is republished when reservations or car bookings change
(`SnapshotPublisher.mark_dirty(node)` through `vehicle_nodes_changed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import (
    BADGES,
    CAR_BOOKINGS,
    PEOPLE,
    RESERVATIONS,
    TRANSPORT_STOP_TIMES,
    TRANSPORT_STOPS,
    TRANSPORT_TRIPS,
    TRANSPORT_VEHICLES,
    TRIP_SEATS,
)
from cloud.transport import schedule
from ruang import contract

# Car bookings that ended this recently still ship (a late return), and those
# starting this soon after the end of the day (an early pick-up).
CAR_LOOKBACK = timedelta(hours=12)
CAR_LOOKAHEAD = timedelta(hours=12)
ACTIVE_CAR = ("approved", "picked_up")


@dataclass(frozen=True, slots=True)
class VehicleSections:
    vehicle: contract.SnapshotVehicle
    trips: tuple[contract.SnapshotTrip, ...] = ()
    seats: tuple[contract.SnapshotSeat, ...] = ()
    car_bookings: tuple[contract.SnapshotCarBooking, ...] = ()
    people: frozenset[str] | None = None  # None: every ASN and valid guest


async def vehicle_of_node(conn: AsyncConnection, node: str) -> Any | None:
    return (
        await conn.execute(select(TRANSPORT_VEHICLES).where(TRANSPORT_VEHICLES.c.node_id == node))
    ).first()


async def nodes_of_vehicles(conn: AsyncConnection, vehicles: set[str] | None = None) -> list[str]:
    """The nodes riding in `vehicles` (all vehicle nodes if None)."""
    stmt = select(TRANSPORT_VEHICLES.c.node_id).where(TRANSPORT_VEHICLES.c.node_id.is_not(None))
    if vehicles is not None:
        stmt = stmt.where(TRANSPORT_VEHICLES.c.id.in_(sorted(vehicles)))
    return sorted(n for n in await conn.scalars(stmt) if n is not None)


async def _trip_stops(
    conn: AsyncConnection, trip_ids: list[str]
) -> dict[str, tuple[contract.SnapshotStop, ...]]:
    out: dict[str, list[contract.SnapshotStop]] = {}
    if not trip_ids:
        return {}
    rows = await conn.execute(
        select(TRANSPORT_STOP_TIMES.c.trip_id, TRANSPORT_STOPS.c.stop_id,
               TRANSPORT_STOPS.c.lat, TRANSPORT_STOPS.c.lon)
        .join(TRANSPORT_STOPS, TRANSPORT_STOPS.c.stop_id == TRANSPORT_STOP_TIMES.c.stop_id)
        .where(TRANSPORT_STOP_TIMES.c.trip_id.in_(trip_ids))
        .order_by(TRANSPORT_STOP_TIMES.c.trip_id, TRANSPORT_STOP_TIMES.c.stop_sequence)
    )  # fmt: skip
    for trip_id, stop_id, lat, lon in rows:
        out.setdefault(trip_id, []).append(contract.SnapshotStop(stop=stop_id, lat=lat, lon=lon))
    return {trip: tuple(stops) for trip, stops in out.items()}


async def _shuttle(conn: AsyncConnection, vehicle: Any, now: datetime) -> VehicleSections:
    tz = await schedule.timezone(conn)
    today = now.astimezone(tz).date()
    days = [schedule.gtfs_date(today), schedule.gtfs_date(today + timedelta(days=1))]
    counters = {
        (r.trip_id, r.service_date): r
        for r in await conn.execute(select(TRIP_SEATS).where(TRIP_SEATS.c.service_date.in_(days)))
    }
    blocks = set(
        await conn.scalars(
            select(TRANSPORT_TRIPS.c.trip_id).where(TRANSPORT_TRIPS.c.block_id == vehicle.id)
        )
    )
    runs: list[tuple[Any, Any]] = []
    for day in days:
        for trip in await schedule.trips_on(conn, day):
            counter = counters.get((trip.trip_id, trip.service_date))
            assigned = counter.vehicle_id if counter is not None else None
            if assigned == vehicle.id or (assigned is None and trip.trip_id in blocks):
                runs.append((trip, counter))
    stops = await _trip_stops(conn, sorted({t.trip_id for t, _ in runs}))
    keys = [(t.trip_id, t.service_date) for t, _ in runs]
    seat_rows = (
        await conn.execute(
            select(RESERVATIONS).where(
                RESERVATIONS.c.status == "confirmed",
                RESERVATIONS.c.service_date.in_(days),
                RESERVATIONS.c.trip_id.in_(sorted({k[0] for k in keys})),
            )
        )
        if keys
        else []
    )
    wanted = set(keys)
    seats = tuple(
        contract.SnapshotSeat(
            id=str(r.id),
            person=r.person_id,
            trip=r.trip_id,
            service_date=r.service_date,
            from_stop=r.from_stop,
        )
        for r in seat_rows
        if (r.trip_id, r.service_date) in wanted
    )
    booked: dict[tuple[str, str], int] = {}
    for s in seats:
        booked[(s.trip, s.service_date)] = booked.get((s.trip, s.service_date), 0) + 1
    trips = []
    for trip, counter in runs:
        key = (trip.trip_id, trip.service_date)
        capacity = min(1000, counter.capacity if counter is not None else vehicle.capacity)
        trips.append(
            contract.SnapshotTrip(
                trip=trip.trip_id,
                service_date=trip.service_date,
                start=trip.start,
                end=trip.end,
                capacity=capacity,
                reserved=min(capacity, booked.get(key, 0)),
                stops=stops.get(trip.trip_id, ())[:200],
            )
        )
    return VehicleSections(_vehicle(vehicle), trips=tuple(trips), seats=seats)


async def _poolcar(conn: AsyncConnection, vehicle: Any, now: datetime) -> VehicleSections:
    rows = await conn.execute(
        select(CAR_BOOKINGS).where(
            CAR_BOOKINGS.c.vehicle_id == vehicle.id,
            CAR_BOOKINGS.c.status.in_(ACTIVE_CAR),
            CAR_BOOKINGS.c.ends_at > now - CAR_LOOKBACK,
            CAR_BOOKINGS.c.starts_at < now + timedelta(days=1) + CAR_LOOKAHEAD,
        )
    )
    bookings = tuple(
        contract.SnapshotCarBooking(
            id=str(r.id),
            person=r.person_id,
            start=r.starts_at.timestamp(),
            end=r.ends_at.timestamp(),
        )
        for r in rows
    )
    return VehicleSections(
        _vehicle(vehicle), car_bookings=bookings, people=frozenset(b.person for b in bookings)
    )


def _vehicle(row: Any) -> contract.SnapshotVehicle:
    return contract.SnapshotVehicle(
        vehicle=row.id, kind=row.kind, capacity=min(1000, max(0, row.capacity))
    )


async def vehicle_sections(
    conn: AsyncConnection, node: str, now: datetime
) -> VehicleSections | None:
    """The vehicle sections of `node`'s snapshot, None if no vehicle is bound to it."""
    vehicle = await vehicle_of_node(conn, node)
    if vehicle is None:
        return None
    if vehicle.kind == "shuttle":
        return await _shuttle(conn, vehicle, now)
    return await _poolcar(conn, vehicle, now)


async def vehicle_badges(
    conn: AsyncConnection, people: frozenset[str] | None, now: datetime
) -> list[tuple[str, str, str, datetime | None]]:
    """(uid, kind, person, valid_until) of the active badges a vehicle's door accepts."""
    holders: Any
    if people is None:
        holders = PEOPLE.c.kind == "asn"
        guests = (
            (PEOPLE.c.kind == "guest")
            & or_(PEOPLE.c.valid_from.is_(None), PEOPLE.c.valid_from <= now)
            & or_(PEOPLE.c.valid_until.is_(None), PEOPLE.c.valid_until > now)
        )
        holders = or_(holders, guests)
    else:
        holders = PEOPLE.c.id.in_(sorted(people))
    rows = await conn.execute(
        select(BADGES.c.uid, BADGES.c.kind, BADGES.c.person_id, PEOPLE.c.valid_until)
        .join(PEOPLE, PEOPLE.c.id == BADGES.c.person_id)
        .where(BADGES.c.status == "active", holders)
        .order_by(BADGES.c.uid)
    )
    return [(r.uid, r.kind, r.person_id, r.valid_until) for r in rows]
