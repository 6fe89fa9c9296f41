"""The schedule as the API lists it: stops, routes, shapes, trips of a day, one trip's plan.

Times go out as aware datetimes in the schedule's time zone (WITA), as the rest of the
API writes them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import (
    TRANSPORT_ROUTES,
    TRANSPORT_SHAPES,
    TRANSPORT_STOP_TIMES,
    TRANSPORT_STOPS,
    TRANSPORT_TRIPS,
)
from cloud.errors import NotFound
from cloud.transport import schedule
from cloud.transport.plan import TripPlan
from cloud.transport.schemas import (
    DeparturePublic,
    RoutePublic,
    ShapePublic,
    StopPublic,
    StopTimePublic,
    TripPlanPublic,
    TripPublic,
)


async def list_stops(conn: AsyncConnection, route: str | None = None) -> list[StopPublic]:
    stmt = select(TRANSPORT_STOPS).order_by(TRANSPORT_STOPS.c.stop_id)
    if route is not None:
        served = (
            select(TRANSPORT_STOP_TIMES.c.stop_id)
            .join(TRANSPORT_TRIPS, TRANSPORT_TRIPS.c.trip_id == TRANSPORT_STOP_TIMES.c.trip_id)
            .where(TRANSPORT_TRIPS.c.route_id == route)
        )
        stmt = stmt.where(TRANSPORT_STOPS.c.stop_id.in_(served))
    return [StopPublic.model_validate(r) for r in await conn.execute(stmt)]


async def list_routes(conn: AsyncConnection) -> list[RoutePublic]:
    rows = await conn.execute(
        select(TRANSPORT_ROUTES).order_by(
            TRANSPORT_ROUTES.c.sort_order, TRANSPORT_ROUTES.c.route_id
        )
    )
    return [RoutePublic.model_validate(r) for r in rows]


async def list_shapes(conn: AsyncConnection, route: str | None = None) -> list[ShapePublic]:
    stmt = select(TRANSPORT_SHAPES).order_by(
        TRANSPORT_SHAPES.c.shape_id, TRANSPORT_SHAPES.c.sequence
    )
    if route is not None:
        used = select(TRANSPORT_TRIPS.c.shape_id).where(TRANSPORT_TRIPS.c.route_id == route)
        stmt = stmt.where(TRANSPORT_SHAPES.c.shape_id.in_(used))
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in await conn.execute(stmt):
        points[row.shape_id].append((row.lat, row.lon))
    return [ShapePublic(shape_id=k, points=v) for k, v in points.items()]


def _at(ts: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts, tz)


async def trips(
    conn: AsyncConnection, day: date, *, route: str | None = None, stop: str | None = None
) -> list[TripPublic]:
    tz = await schedule.timezone(conn)
    return [
        TripPublic(
            trip_id=t.trip_id,
            route_id=t.route_id,
            service_date=t.service_date,
            headsign=t.headsign,
            direction_id=t.direction_id,
            shape_id=t.shape_id,
            start=_at(t.start, tz),
            end=_at(t.end, tz),
        )
        for t in await schedule.trips_on(conn, day, route=route, stop=stop)
    ]


def plan_public(plan: TripPlan, shape_id: str | None, tz: ZoneInfo) -> TripPlanPublic:
    return TripPlanPublic(
        trip_id=plan.trip_id,
        route_id=plan.route_id,
        service_date=plan.service_date,
        headsign=plan.headsign,
        direction_id=plan.direction_id,
        shape_id=shape_id,
        start=_at(plan.start, tz),
        end=_at(plan.end, tz),
        length_m=plan.length_m,
        stops=[
            StopTimePublic(
                stop_id=s.stop_id,
                stop_sequence=s.stop_sequence,
                name=s.name,
                lat=s.lat,
                lon=s.lon,
                dist_m=s.dist_m,
                arrival=_at(s.arrival, tz),
                departure=_at(s.departure, tz),
            )
            for s in plan.stops
        ],
    )


async def trip(conn: AsyncConnection, trip_id: str, day: date) -> TripPlanPublic:
    plan = await schedule.trip_plan(conn, trip_id, day)
    if plan is None:
        raise NotFound(
            f"trip {trip_id!r} does not run on {day.isoformat()}", title="Trip not found"
        )
    shape_id = (
        await conn.execute(
            select(TRANSPORT_TRIPS.c.shape_id).where(TRANSPORT_TRIPS.c.trip_id == trip_id)
        )
    ).scalar()
    return plan_public(plan, shape_id, await schedule.timezone(conn))


async def departures(
    conn: AsyncConnection, stop_id: str, after: datetime, limit: int
) -> list[DeparturePublic]:
    tz = await schedule.timezone(conn)
    found = await schedule.departures_from(conn, stop_id, after.timestamp(), limit=limit)
    return [
        DeparturePublic(
            trip_id=d.trip_id,
            route_id=d.route_id,
            service_date=d.service_date,
            headsign=d.headsign,
            stop_id=d.stop_id,
            departure=_at(d.departure, tz),
        )
        for d in found
    ]


async def today(conn: AsyncConnection) -> date:
    """Today's date where the schedule runs (WITA)."""
    return datetime.now(await schedule.timezone(conn)).date()
