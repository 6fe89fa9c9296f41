"""The transport network for the maps: routes, stops and shapes in one read.

Anyone signed in: it is the public timetable's geometry, nothing personal.
"""

from __future__ import annotations

from fastapi import APIRouter

from cloud.deps import DbDep
from cloud.people.auth import CurrentUser
from cloud.transport.network import network
from cloud.transport.schemas_network import Network

router = APIRouter(prefix="/transport", tags=["transport"])


@router.get("/network", response_model=Network)
async def transport_network(conn: DbDep, user: CurrentUser) -> Network:
    """Routes (with GTFS colours), boarding stops, and one line per shape the trips use."""
    return await network(conn)
