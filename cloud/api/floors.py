"""Floor map routes: the site tree, a floor's live map and its SSE stream, a desk's day.

The logic (states, privacy, queries) is in cloud/buildings/floormap.py, floorstream.py and
timeline.py; the JSON is described in docs/dashboards-api.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from cloud.api.scoping import scoped
from cloud.api_types import Problem
from cloud.buildings import floormap, floorstream, timeline
from cloud.buildings.schemas import DeskTimeline, FloorMap, MapUpdate, SiteTree
from cloud.deps import DbDep, EngineDep, LiveDep
from cloud.people.auth import CurrentUser
from cloud.privacy.access_audit import record_read

router = APIRouter(tags=["floor map"])
# Technicians see the map too (which desks are out of service), without names.
# Scoped to the token's sites (cloud/people/access.py): another site's floor or desk is a 404.
VIEWERS = [scoped("technician", "facility_manager")]
_FLOOR_404: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such floor"}
}


@router.get("/sites/tree", response_model=SiteTree)
async def sites_tree(conn: DbDep, user: CurrentUser) -> SiteTree:
    return await floormap.site_tree(conn)


@router.get(
    "/floors/{floor_id}/map", response_model=FloorMap, dependencies=VIEWERS, responses=_FLOOR_404
)
async def floor_map(
    floor_id: str,
    conn: DbDep,
    engine: EngineDep,
    user: CurrentUser,
    zone: Annotated[str | None, Query(description="only this zone id")] = None,
    agency: Annotated[str | None, Query(description="only zones reserved for this agency")] = None,
) -> FloorMap:
    found = await floormap.floor_map(conn, floor_id, viewer=user, zone=zone, agency=agency)
    named = sum(1 for d in found.desks if d.occupant)
    # Occupants' names are other people's data: each map that shows some is audited.
    await record_read(engine, user, "floor.names", site=found.floor.site_id, records=named)
    return found


@router.get(
    "/floors/{floor_id}/stream",
    dependencies=VIEWERS,
    response_class=StreamingResponse,
    responses={
        **_FLOOR_404,
        200: {
            "description": "Server-sent events: `event: desks` with data = MapUpdate JSON "
            "(changed desks of this floor + the floor's counts), `event: resync` (reload "
            "the map), and `: keep-alive` comments every 15 s.",
            "content": {"text/event-stream": {"schema": MapUpdate.model_json_schema()}},
        },
    },
)
async def floor_stream(
    floor_id: str, engine: EngineDep, user: CurrentUser, live: LiveDep
) -> StreamingResponse:
    # Checked before the stream starts, so an unknown floor is a plain 404.
    # No DbDep: a dependency's connection would stay checked out for the stream's life.
    async with engine.connect() as conn:
        floor = await floormap.floor_info(conn, floor_id)
    if floormap.may_see_names(user, floor.site_id):
        # A stream that may carry names is audited once, when it opens.
        await record_read(engine, user, "floor.names", site=floor.site_id)
    events = floorstream.floor_stream(
        engine, live, floor_id, names=floormap.may_see_names(user, floor.site_id)
    )
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/desks/{desk_id}/timeline",
    response_model=DeskTimeline,
    dependencies=VIEWERS,
    responses={404: {"model": Problem, "description": "no such desk"}},
)
async def desk_timeline(
    desk_id: str, conn: DbDep, engine: EngineDep, user: CurrentUser
) -> DeskTimeline:
    found = await timeline.desk_timeline(conn, desk_id, viewer=user)
    named = sum(1 for e in found.entries if e.person)
    await record_read(engine, user, "desk.timeline", records=named)
    return found
