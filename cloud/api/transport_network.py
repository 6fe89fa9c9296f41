"""The transport network for the maps (routes, stops, shapes in one read) and the rider's
searches: trips from a stop, pool cars free for a time.

Anyone signed in: the public timetable's geometry, seat counts and car ids, nothing
personal.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api_types import AwareDateTime, Problem
from cloud.deps import DbDep, SettingsDep
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError
from cloud.transport.network import network
from cloud.transport.schemas_network import FoundTrip, FreeCar, Network
from cloud.transport.seat_facts import capacity_rule
from cloud.transport.trip_finder import find_trips, free_pool_cars

router = APIRouter(prefix="/transport", tags=["transport"])
StopQ = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f/]{1,64}$")]


@router.get("/network", response_model=Network)
async def transport_network(conn: DbDep, user: CurrentUser) -> Network:
    """Routes (with GTFS colours), boarding stops, and one line per shape the trips use."""
    return await network(conn)


@router.get(
    "/trip-finder",
    response_model=list[FoundTrip],
    responses={422: {"model": Problem, "description": "bad stop or date"}},
)
async def trip_finder(
    conn: DbDep,
    user: CurrentUser,
    settings: SettingsDep,
    from_stop: StopQ,
    day: Annotated[date, Query(alias="date", description="service day (WITA), YYYY-MM-DD")],
    to_stop: Annotated[str | None, Query(max_length=64)] = None,
) -> list[FoundTrip]:
    """Trips leaving `from_stop` on `date` (reaching `to_stop` when given), with free seats."""
    return await find_trips(
        conn, from_stop, day, to_stop=to_stop or None, capacity=capacity_rule(settings)
    )


@router.get(
    "/pool-cars/free",
    response_model=list[FreeCar],
    responses={422: {"model": Problem, "description": "bad time range"}},
)
async def pool_cars_free(
    conn: DbDep,
    user: CurrentUser,
    start: Annotated[AwareDateTime, Query(alias="from", description="RFC 3339 with offset")],
    to: Annotated[AwareDateTime, Query(description="RFC 3339 with offset, after from")],
    site: Annotated[str | None, Query(max_length=64, description="home site")] = None,
) -> list[FreeCar]:
    """Pool cars with no live booking overlapping [from, to): what a rider may request."""
    if to <= start:
        raise ProblemError(422, "to must be after from", title="Bad time range")
    return await free_pool_cars(conn, start, to, site)
