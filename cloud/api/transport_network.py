"""The transport network for the maps (routes, stops, shapes in one read) and the rider's
trip search.

Anyone signed in: the public timetable's geometry and seat counts, nothing personal.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api_types import Problem
from cloud.deps import DbDep, SettingsDep
from cloud.people.auth import CurrentUser
from cloud.transport.network import network
from cloud.transport.schemas_network import FoundTrip, Network
from cloud.transport.seat_facts import capacity_rule
from cloud.transport.trip_finder import find_trips

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
