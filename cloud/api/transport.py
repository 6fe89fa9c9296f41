"""Transport schedule and vehicle routes: GTFS import/export, stops, routes, shapes, trips,
vehicles, the stops near a site.

The logic is in cloud/transport/ (gtfs_import.py, gtfs_export.py, catalogue.py,
vehicles.py); docs/transport.md describes the model and the endpoints. The
schedule is public timetable data: any signed-in user reads it. Replacing it is
for admins; vehicles are for the operators of their home site.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BeforeValidator

from cloud.api.scoping import scoped
from cloud.api_types import Problem
from cloud.deps import DbDep, EngineDep, TransportLiveDep
from cloud.errors import Forbidden
from cloud.people import access
from cloud.people.auth import CurrentUser, require_roles
from cloud.transport import catalogue, gtfs_export, gtfs_import, vehicles
from cloud.transport.schemas import (
    GtfsImportPublic,
    RoutePublic,
    ShapePublic,
    SiteStopIn,
    SiteStopPublic,
    StopPublic,
    TripPlanPublic,
    TripPublic,
    VehicleCreate,
    VehicleKind,
    VehiclePatch,
    VehiclePublic,
    VehicleState,
)
from ruang.contract import ID_PATTERN

router = APIRouter(prefix="/transport", tags=["transport"])

OPERATORS = [scoped("technician", "facility_manager")]
MANAGERS = [scoped("facility_manager")]
ADMINS = [require_roles("admin")]

GtfsId = Annotated[str, Path(min_length=1, max_length=64, description="GTFS id")]
VehicleId = Annotated[str, Path(pattern=ID_PATTERN, description="vehicle id")]
SiteId = Annotated[str, Path(pattern=ID_PATTERN, description="site id")]


def _iso_date(value: object) -> object:
    """A date as YYYY-MM-DD text only (pydantic alone also takes numbers as Unix times)."""
    if value is None or isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("a date as YYYY-MM-DD")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ServiceDate = Annotated[
    date | None,
    BeforeValidator(_iso_date),
    Query(description="service day (WITA), YYYY-MM-DD; default today", alias="date"),
]
RouteFilter = Annotated[str | None, Query(max_length=64, description="route_id")]
StopFilter = Annotated[str | None, Query(max_length=64, description="stop_id")]

_ZIP_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A GTFS zip (agency, stops, routes, trips, stop_times, calendar and/or "
        "calendar_dates, optional shapes). It replaces the whole schedule, or nothing.",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_VEHICLE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such vehicle"},
    409: {"model": Problem, "description": "the id exists, or the node rides in another vehicle"},
    422: {"model": Problem, "description": "a rule between fields, or an unknown site"},
}


# --- the schedule -----------------------------------------------------------------------------


@router.post(
    "/gtfs",
    response_model=GtfsImportPublic,
    dependencies=ADMINS,
    openapi_extra=_ZIP_BODY,
    responses={
        413: {"model": Problem, "description": "zip or its unpacked files too large"},
        422: {
            "model": Problem,
            "description": "refused; `errors` lists {file, line, field, message} for each error",
        },
    },
)
async def import_gtfs(
    request: Request, engine: EngineDep, live: TransportLiveDep
) -> GtfsImportPublic:
    # Read raw: a GTFS feed is one document, not form fields.
    rows = await gtfs_import.import_gtfs(engine, await request.body())
    await live.refresh()  # the live trackers match against the new timetable at once
    return GtfsImportPublic(rows=rows)


@router.get(
    "/gtfs",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the schedule as GTFS"}},
)
async def export_gtfs(conn: DbDep, user: CurrentUser) -> Response:
    return Response(
        await gtfs_export.export_gtfs(conn),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="ruang-gtfs.zip"'},
    )


@router.get("/stops", response_model=list[StopPublic])
async def list_stops(conn: DbDep, user: CurrentUser, route: RouteFilter = None) -> list[StopPublic]:
    return await catalogue.list_stops(conn, route)


@router.get("/routes", response_model=list[RoutePublic])
async def list_routes(conn: DbDep, user: CurrentUser) -> list[RoutePublic]:
    return await catalogue.list_routes(conn)


@router.get("/shapes", response_model=list[ShapePublic])
async def list_shapes(
    conn: DbDep, user: CurrentUser, route: RouteFilter = None
) -> list[ShapePublic]:
    return await catalogue.list_shapes(conn, route)


@router.get("/trips", response_model=list[TripPublic])
async def list_trips(
    conn: DbDep,
    user: CurrentUser,
    day: ServiceDate = None,
    route: RouteFilter = None,
    stop: StopFilter = None,
) -> list[TripPublic]:
    return await catalogue.trips(conn, day or await catalogue.today(conn), route=route, stop=stop)


@router.get(
    "/trips/{trip_id}",
    response_model=TripPlanPublic,
    responses={404: {"model": Problem, "description": "no such trip runs that day"}},
)
async def get_trip(
    trip_id: GtfsId, conn: DbDep, user: CurrentUser, day: ServiceDate = None
) -> TripPlanPublic:
    return await catalogue.trip(conn, trip_id, day or await catalogue.today(conn))


# --- stops near a site (the kiosk's) ----------------------------------------------------------


@router.get("/sites/{site}/stops", response_model=list[SiteStopPublic])
async def get_site_stops(site: SiteId, conn: DbDep, user: CurrentUser) -> list[SiteStopPublic]:
    return await vehicles.site_stops(conn, site)


@router.put(
    "/sites/{site}/stops",
    response_model=list[SiteStopPublic],
    dependencies=MANAGERS,
    responses={
        404: {"model": Problem, "description": "no such site"},
        422: {"model": Problem, "description": "a stop not in the schedule, or listed twice"},
    },
)
async def put_site_stops(
    site: SiteId, body: list[SiteStopIn], engine: EngineDep
) -> list[SiteStopPublic]:
    return await vehicles.set_site_stops(engine, site, body)


# --- vehicles ---------------------------------------------------------------------------------


@router.get("/vehicles", response_model=list[VehiclePublic], dependencies=OPERATORS)
async def list_vehicles(
    conn: DbDep,
    user: CurrentUser,
    kind: Annotated[VehicleKind | None, Query()] = None,
    state: Annotated[VehicleState | None, Query()] = None,
) -> list[VehiclePublic]:
    rows = await vehicles.list_vehicles(conn, kind=kind, state=state)
    return await access.only_vehicles(conn, user, rows, lambda v: v.id)


@router.post(
    "/vehicles",
    response_model=VehiclePublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=MANAGERS,
    responses=_VEHICLE_ERRORS,
)
async def create_vehicle(
    body: VehicleCreate, engine: EngineDep, user: CurrentUser, live: TransportLiveDep
) -> VehiclePublic:
    await _ensure_may_place(engine, user, body.site_id, body.node_id)
    created = await vehicles.create_vehicle(engine, body)
    await live.refresh()  # its positions are tracked from the first one
    return created


@router.get(
    "/vehicles/{vehicle_id}",
    response_model=VehiclePublic,
    dependencies=OPERATORS,
    responses={404: {"model": Problem, "description": "no such vehicle"}},
)
async def get_vehicle(vehicle_id: VehicleId, conn: DbDep) -> VehiclePublic:
    return await vehicles.get_vehicle(conn, vehicle_id)


@router.patch(
    "/vehicles/{vehicle_id}",
    response_model=VehiclePublic,
    dependencies=MANAGERS,
    responses=_VEHICLE_ERRORS,
)
async def update_vehicle(
    vehicle_id: VehicleId,
    body: VehiclePatch,
    engine: EngineDep,
    user: CurrentUser,
    live: TransportLiveDep,
) -> VehiclePublic:
    fields = body.model_fields_set
    await _ensure_may_place(
        engine,
        user,
        body.site_id if "site_id" in fields else None,
        body.node_id if "node_id" in fields else None,
        moving="site_id" in fields,
    )
    updated = await vehicles.update_vehicle(engine, vehicle_id, body)
    await live.refresh()
    return updated


async def _ensure_may_place(
    engine: EngineDep,
    user: CurrentUser,
    site: str | None,
    node: str | None,
    *,
    moving: bool = True,
) -> None:
    """A facility manager places vehicles in their own sites only, and binds nodes that
    are new or already serve one of their sites (admins: anything)."""
    if user.is_admin:
        return
    if moving and site is None:
        raise Forbidden("Only admins keep vehicles with no home site.", title="Home site needed")
    async with engine.connect() as conn:
        if site is not None:
            await access.ensure_in_scope(conn, user, access.MANAGER_ROLES, "site", site)
        if node is not None:
            sites = (await access.node_sites(conn, [node])).get(node, set())
            if sites and not access.in_scope(access.site_scope(user, access.MANAGER_ROLES), sites):
                raise access.not_found("node", node)
