"""The shuttle planned on a trip instance sets its capacity (docs/transport.md, "Seat
reservations").

The dispatcher's assignment of a vehicle to a trip of a day calls `assign_vehicle`
on its own transaction (and `unassign_vehicle` when it is taken off); the seat
counter row then records the vehicle, so the vehicle's snapshot lists the trip
(cloud/transport/seat_snapshot.py) and its capacity is the trip's.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import TRIP_SEATS
from cloud.errors import NotFound
from cloud.transport.reservations import counter_key, lock_counter, now_utc, promote
from cloud.transport.seat_facts import CapacityRule, ensure_counter, trip_facts, vehicle_info


async def assign_vehicle(
    conn: AsyncConnection,
    trip_id: str,
    service_date: str,
    vehicle_id: str,
    capacity: CapacityRule,
) -> int:
    """Plans `vehicle_id` on a trip instance: its capacity becomes the trip's. Returns it.

    Seats already taken are never withdrawn: a smaller vehicle leaves the trip with
    at least as many seats as are confirmed or occupied (the dispatcher sees the
    trip full). Runs on the caller's transaction.
    """
    vehicle = await vehicle_info(conn, vehicle_id)
    if vehicle is None or vehicle.kind != "shuttle":
        raise NotFound(f"shuttle {vehicle_id!r} is unknown", title="Vehicle not found")
    facts = await trip_facts(conn, trip_id, service_date, capacity)
    await ensure_counter(conn, facts)
    row = (
        await conn.execute(
            select(TRIP_SEATS.c.confirmed, TRIP_SEATS.c.walk_ons)
            .where(TRIP_SEATS.c.trip_id == trip_id, TRIP_SEATS.c.service_date == service_date)
            .with_for_update()
        )
    ).one()
    seats = int(max(vehicle.capacity, row.confirmed + row.walk_ons))
    await conn.execute(
        update(TRIP_SEATS)
        .where(TRIP_SEATS.c.trip_id == trip_id, TRIP_SEATS.c.service_date == service_date)
        .values(vehicle_id=vehicle_id, capacity=seats)
    )
    await promote(conn, trip_id, service_date, now_utc())
    return seats


async def unassign_vehicle(
    conn: AsyncConnection, trip_id: str, service_date: str, capacity: CapacityRule
) -> None:
    """No vehicle planned on the trip instance any more: its route's capacity again (never
    below the seats already taken). A trip nobody reserved has nothing to change."""
    row = await lock_counter(conn, trip_id, service_date)
    if row is None:
        return
    facts = await trip_facts(conn, trip_id, service_date, capacity)
    seats = max(capacity.of(facts.route_id), row.confirmed + row.walk_ons)
    await conn.execute(
        update(TRIP_SEATS)
        .where(counter_key(trip_id, service_date))
        .values(vehicle_id=None, capacity=seats)
    )
    await promote(conn, trip_id, service_date, now_utc())
