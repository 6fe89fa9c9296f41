"""What seat reservations need to know about a trip instance and a vehicle, from the schedule.

A trip's capacity is the capacity of the vehicle planned on it (`assign_vehicle`,
which the dispatcher's assignment calls; kept on the trip instance's counter row),
else the route's default from `RUANG_SHUTTLE_ROUTE_CAPACITY` (route id -> riders),
else `RUANG_SHUTTLE_DEFAULT_CAPACITY` (docs/transport.md, "Seat reservations").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import TRANSPORT_VEHICLES as VEHICLES
from cloud.db.tables import TRIP_SEATS
from cloud.errors import NotFound
from cloud.settings import CloudSettings
from cloud.transport import schedule


@dataclass(frozen=True)
class TripFacts:
    """One trip instance as reservations see it; `stops` are (stop id, departure) in order."""

    trip_id: str
    service_date: str
    route_id: str
    vehicle_id: str | None
    capacity: int
    departs_at: datetime
    arrives_at: datetime
    stops: tuple[tuple[str, datetime], ...]
    # The counter row existed when these facts were read (rows are never deleted).
    counted: bool = False


@dataclass(frozen=True)
class VehicleInfo:
    id: str
    kind: str
    capacity: int
    site_id: str | None


@dataclass(frozen=True)
class CapacityRule:
    """The capacity of a trip with no vehicle planned: per route, else one default."""

    default: int
    per_route: Mapping[str, int]

    def of(self, route_id: str) -> int:
        return self.per_route.get(route_id, self.default)


DEFAULT_RULE = CapacityRule(default=40, per_route={})


def capacity_rule(settings: CloudSettings) -> CapacityRule:
    return CapacityRule(settings.shuttle_default_capacity, dict(settings.shuttle_route_capacity))


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def trip_facts(
    conn: AsyncConnection, trip_id: str, service_date: str, capacity: CapacityRule
) -> TripFacts:
    """The trip instance, or NotFound when no such trip runs on that service day."""
    plan = await _plan(conn, trip_id, service_date)
    counter = (
        await conn.execute(
            select(TRIP_SEATS.c.vehicle_id, TRIP_SEATS.c.capacity).where(
                TRIP_SEATS.c.trip_id == trip_id, TRIP_SEATS.c.service_date == service_date
            )
        )
    ).first()
    return TripFacts(
        trip_id=trip_id,
        service_date=service_date,
        route_id=plan.route_id,
        vehicle_id=counter.vehicle_id if counter else None,
        capacity=counter.capacity if counter else capacity.of(plan.route_id),
        departs_at=plan.stops[0][1],
        arrives_at=plan.arrives_at,
        stops=plan.stops,
        counted=counter is not None,
    )


@dataclass(frozen=True)
class _Timetable:
    route_id: str
    arrives_at: datetime
    stops: tuple[tuple[str, datetime], ...]


# Building a TripPlan (stop times, shape projection) costs far more than the seat
# write itself, and every reservation of a busy trip asks for the same one: plans
# are kept PLAN_TTL_S, so a GTFS re-import reaches reservations within that time.
PLAN_TTL_S = 60.0
_PLAN_CACHE_MAX = 4096
_plans: dict[tuple[str, str], tuple[float, _Timetable]] = {}


async def _plan(conn: AsyncConnection, trip_id: str, service_date: str) -> _Timetable:
    key = (trip_id, service_date)
    cached = _plans.get(key)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        plan = await schedule.trip_plan(conn, trip_id, service_date)
    except ValueError:
        plan = None  # not a date at all
    if plan is None or not plan.stops:
        raise NotFound(f"trip {trip_id!r} does not run on {service_date}", title="Trip not found")
    table = _Timetable(
        plan.route_id,
        _utc(plan.end),
        tuple((s.stop_id, _utc(s.departure)) for s in plan.stops),
    )
    if len(_plans) >= _PLAN_CACHE_MAX:
        _plans.clear()
    _plans[key] = (now + PLAN_TTL_S, table)
    return table


async def ensure_counter(conn: AsyncConnection, facts: TripFacts) -> None:
    """Creates the trip instance's seat counter row if it is missing (else a no-op)."""
    values = {
        "trip_id": facts.trip_id,
        "service_date": facts.service_date,
        "vehicle_id": facts.vehicle_id,
        "capacity": facts.capacity,
        "confirmed": 0,
        "walk_ons": 0,
        "walk_ons_over": 0,
        "departs_at": facts.departs_at,
        "arrives_at": facts.arrives_at,
    }
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(make(TRIP_SEATS).values(values).on_conflict_do_nothing())


async def vehicle_info(conn: AsyncConnection, vehicle_id: str) -> VehicleInfo | None:
    row = (
        await conn.execute(
            select(VEHICLES.c.id, VEHICLES.c.kind, VEHICLES.c.capacity, VEHICLES.c.site_id).where(
                VEHICLES.c.id == vehicle_id
            )
        )
    ).first()
    return None if row is None else VehicleInfo(row.id, row.kind, row.capacity, row.site_id)
