"""The vehicle sections of a vehicle node's signed snapshot (cloud/fleet/snapshots.py signs it).

A node is a vehicle node when a vehicle (`transport_vehicles.node_id`) is bound
to it. Its snapshot then carries what the node needs to decide taps at the door
alone (edge/boarding.py, edge/poolcar.py):

- `vehicle`: id, kind, capacity;
- a shuttle: `trips` planned on it yesterday, today and tomorrow (service days in the
  schedule's time zone), each with capacity, confirmed reservations and its
  stops with coordinates (the node infers the boarding stop from its fix);
  `seats`: the reservations on them; `badges`: every active badge of an ASN and
  of a guest whose pass is valid (the shuttle is a shared service for every
  agency);
- a pool car: `car_bookings` approved (or picked up) around today, and the
  badges of their holders only.

Trips, seats and car bookings come from the seat service
(`cloud/transport/seat_snapshot.py::vehicle_snapshot_parts`); this module adds
the stops and the badges and says which node rides in which vehicle.

The publisher (cloud/fleet/snapshots.py) compares these sections with what each
vehicle node was last sent every few seconds, so any change of reservations or
car bookings republishes that node's snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import (
    BADGES,
    PEOPLE,
    TRANSPORT_STOP_TIMES,
    TRANSPORT_STOPS,
    TRANSPORT_VEHICLES,
)
from cloud.transport import schedule
from cloud.transport.seat_snapshot import vehicle_snapshot_parts
from ruang import contract


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


async def _parts(conn: AsyncConnection, vehicle: Any, now: datetime) -> VehicleSections:
    """The seat service's parts of yesterday, today and tomorrow, with each trip's stops."""
    tz = await schedule.timezone(conn)
    today = now.astimezone(tz).date()
    trips: list[contract.SnapshotTrip] = []
    seats: list[contract.SnapshotSeat] = []
    cars: dict[str, contract.SnapshotCarBooking] = {}
    # Yesterday's service day too: its trips past midnight (GTFS 24:xx) still run.
    for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
        day_trips, day_seats, day_cars = await vehicle_snapshot_parts(conn, vehicle.id, day)
        trips += day_trips
        seats += day_seats
        cars.update((c.id, c) for c in day_cars)
    stops = await _trip_stops(conn, sorted({t.trip for t in trips}))
    with_stops = tuple(t.model_copy(update={"stops": stops.get(t.trip, ())[:200]}) for t in trips)
    bookings = tuple(sorted(cars.values(), key=lambda c: (c.start, c.id)))
    if vehicle.kind == "shuttle":
        return VehicleSections(_vehicle(vehicle), trips=with_stops, seats=tuple(seats))
    # A pool car's door opens for the holders of its bookings only.
    return VehicleSections(
        _vehicle(vehicle), car_bookings=bookings, people=frozenset(c.person for c in bookings)
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
    return await _parts(conn, vehicle, now)


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
