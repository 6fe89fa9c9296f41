"""The building model as Brick Schema RDF/Turtle (cloud/buildings/brick.py; docs/open-data.md).

Operators of the site (technicians, facility managers) and admins; another site's
operator gets a 404 as if the site did not exist. Nothing personal is in it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from cloud.api.scoping import scoped
from cloud.api_types import Problem
from cloud.buildings import brick
from cloud.deps import DbDep, SettingsDep
from cloud.people import access
from cloud.people.auth import CurrentUser
from ruang.contract import ID_PATTERN

router = APIRouter(tags=["open data"])
ROLES = ("technician", "facility_manager")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {brick.MEDIA_TYPE: {"schema": {"type": "string"}}},
        "description": f"the site's building model in Brick {brick.BRICK_VERSION} (RDF/Turtle)",
    },
    404: {"model": Problem, "description": "no such site (or not one of the caller's)"},
}


@router.get(
    "/sites/{site_id}/brick.ttl",
    response_class=Response,
    dependencies=[scoped(*ROLES)],
    responses=_RESPONSES,
)
async def site_brick(
    site_id: Annotated[str, Path(pattern=ID_PATTERN)],
    conn: DbDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> Response:
    await access.ensure_in_scope(conn, user, ROLES, "site", site_id)
    body = await brick.site_brick(conn, site_id, bucket=settings.influx_bucket)
    return Response(
        body,
        media_type=f"{brick.MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{site_id}.ttl"'},
    )
