"""SCIM 2.0 routes (RFC 7643/7644) at /scim/v2: Users, searches and the discovery documents
(Groups: cloud/api/scim_groups.py).

For a ministry's identity system (role `scim`, acting on the sites in its token) and
admins. Everything here answers `application/scim+json`, errors included (the route class
of cloud/api/scim_http.py). A write that revoked badges re-publishes the node snapshots.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlalchemy import select
from starlette.routing import Match

from cloud.api import scim_groups
from cloud.api.scim_http import (
    PREFIX,
    Attributes,
    Count,
    Excluded,
    Filter,
    IfMatch,
    ScimClient,
    ScimResponse,
    StartIndex,
    answer,
    base_url,
    body_of,
    errors,
    joined,
    listed,
    patch_ops,
    read_json,
    scim_error,
    scim_router,
    search_body,
)
from cloud.api.snapshots import PublisherDep
from cloud.db.tables import SITES
from cloud.deps import DbDep, EngineDep
from cloud.errors import DomainError
from cloud.people.auth import Principal
from cloud.scim import common, filters, groups, schemas, users

router = scim_router()

# --- discovery ---------------------------------------------------------------------------


@router.get("/ServiceProviderConfig", response_class=ScimResponse)
async def service_provider_config(request: Request, client: ScimClient) -> ScimResponse:
    return ScimResponse(schemas.service_provider_config(base_url(request)))


@router.get("/ResourceTypes", response_class=ScimResponse, response_model=schemas.ListResponse)
async def resource_types(request: Request, client: ScimClient) -> ScimResponse:
    found = schemas.resource_types(base_url(request))
    return ScimResponse(common.list_response(found, len(found), 0))


@router.get("/ResourceTypes/{resource_type}", response_class=ScimResponse, responses=errors(404))
async def resource_type(request: Request, client: ScimClient, resource_type: str) -> ScimResponse:
    for found in schemas.resource_types(base_url(request)):
        if found["id"] == resource_type:
            return ScimResponse(found)
    raise common.not_found("ResourceType", resource_type)


async def _schemas(request: Request, conn: Any, client: Principal) -> list[dict[str, Any]]:
    scope = common.reach(client)
    stmt = select(SITES.c.id).order_by(SITES.c.id)
    if scope is not None:
        stmt = stmt.where(SITES.c.id.in_(sorted(scope)))
    sites = list(await conn.scalars(stmt))
    return schemas.schemas(base_url(request), sites, list(groups.GRANTABLE))


@router.get("/Schemas", response_class=ScimResponse, response_model=schemas.ListResponse)
async def all_schemas(request: Request, conn: DbDep, client: ScimClient) -> ScimResponse:
    found = await _schemas(request, conn, client)
    return ScimResponse(common.list_response(found, len(found), 0))


@router.get("/Schemas/{schema_id}", response_class=ScimResponse, responses=errors(404))
async def one_schema(
    request: Request, conn: DbDep, client: ScimClient, schema_id: str
) -> ScimResponse:
    for found in await _schemas(request, conn, client):
        if found["id"] == schema_id:
            return ScimResponse(found)
    raise common.not_found("Schema", schema_id)


# --- Users -------------------------------------------------------------------------------


@router.get(
    "/Users",
    response_class=ScimResponse,
    response_model=schemas.ListResponse,
    responses=errors(400),
)
async def list_users(
    request: Request,
    conn: DbDep,
    client: ScimClient,
    filter_text: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> ScimResponse:
    page = await users.search(
        conn,
        common.reach(client),
        base_url(request),
        filter_text=filter_text,
        start_index=start_index,
        count=count,
    )
    return listed(page, attributes, excluded)


@router.post(
    "/Users/.search",
    response_class=ScimResponse,
    response_model=schemas.ListResponse,
    responses=errors(400),
    openapi_extra=body_of(schemas.SearchRequest),
)
async def search_users(request: Request, conn: DbDep, client: ScimClient) -> ScimResponse:
    """The listing with its query in a body (RFC 7644 3.4.3), e.g. to keep a filter out of logs."""
    asked = await search_body(request)
    page = await users.search(
        conn,
        common.reach(client),
        base_url(request),
        filter_text=asked.filter,
        start_index=asked.startIndex,
        count=asked.count,
    )
    return listed(page, joined(asked.attributes), joined(asked.excludedAttributes))


@router.post(
    "/.search",
    response_class=ScimResponse,
    response_model=schemas.ListResponse,
    responses=errors(400),
    openapi_extra=body_of(schemas.SearchRequest),
)
async def search_all(request: Request, conn: DbDep, client: ScimClient) -> ScimResponse:
    """Users, then Groups, that match; a filter naming what only one of them has finds
    only that one (RFC 7644 3.4.2.1)."""
    asked = await search_body(request)
    scope, base = common.reach(client), base_url(request)
    offset, limit = common.paging(asked.startIndex, asked.count)
    found: list[dict[str, Any]] = []
    total, readable = 0, 0
    for kind in (users, groups):
        try:
            counted = await kind.search(
                conn, scope, base, filter_text=asked.filter, start_index=1, count=0
            )
        except DomainError as exc:
            if exc.extensions.get("scim_type") != "invalidFilter":
                raise
            continue
        readable += 1
        n = counted["totalResults"]
        skip = max(0, offset - total)
        if len(found) < limit and skip < n:
            page = await kind.search(
                conn,
                scope,
                base,
                filter_text=asked.filter,
                start_index=skip + 1,
                count=limit - len(found),
            )
            found += page["Resources"]
        total += n
    if not readable:
        raise filters.invalid_filter("no resource type can be filtered that way")
    page = common.list_response(found, total, offset)
    return listed(page, joined(asked.attributes), joined(asked.excludedAttributes))


@router.post(
    "/Users",
    status_code=201,
    response_class=ScimResponse,
    response_model=schemas.User,
    responses=errors(400, 409),
    openapi_extra=body_of(schemas.UserIn),
)
async def create_user(
    request: Request, engine: EngineDep, client: ScimClient, snapshots: PublisherDep
) -> ScimResponse:
    written = await users.create(
        engine, common.reach(client), await read_json(request), client, base_url(request)
    )
    if written.badges_revoked:
        snapshots.mark_dirty()
    return answer(written.resource, 201)


@router.get(
    "/Users/{user_id}",
    response_class=ScimResponse,
    response_model=schemas.User,
    responses=errors(404),
)
async def get_user(
    request: Request,
    conn: DbDep,
    client: ScimClient,
    user_id: str,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> ScimResponse:
    found = await users.get(conn, common.reach(client), user_id, base_url(request))
    return answer(found, attributes=attributes, excluded=excluded)


@router.put(
    "/Users/{user_id}",
    response_class=ScimResponse,
    response_model=schemas.User,
    responses=errors(400, 404, 409, 412),
    openapi_extra=body_of(schemas.UserIn),
)
async def replace_user(
    request: Request,
    engine: EngineDep,
    client: ScimClient,
    snapshots: PublisherDep,
    user_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    written = await users.replace(
        engine,
        common.reach(client),
        user_id,
        await read_json(request),
        if_match,
        client,
        base_url(request),
    )
    if written.badges_revoked:
        snapshots.mark_dirty()
    return answer(written.resource)


@router.patch(
    "/Users/{user_id}",
    response_class=ScimResponse,
    response_model=schemas.User,
    responses=errors(400, 404, 409, 412),
    openapi_extra=body_of(schemas.PatchRequest),
)
async def patch_user(
    request: Request,
    engine: EngineDep,
    client: ScimClient,
    snapshots: PublisherDep,
    user_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    ops = patch_ops(await read_json(request))
    written = await users.modify(
        engine, common.reach(client), user_id, ops, if_match, client, base_url(request)
    )
    if written.badges_revoked:
        snapshots.mark_dirty()
    return answer(written.resource)


@router.delete(
    "/Users/{user_id}", status_code=204, response_class=Response, responses=errors(404, 412)
)
async def delete_user(
    request: Request,
    engine: EngineDep,
    client: ScimClient,
    snapshots: PublisherDep,
    user_id: str,
    if_match: IfMatch = None,
) -> Response:
    revoked = await users.remove(
        engine, common.reach(client), user_id, if_match, client, base_url(request)
    )
    if revoked:
        snapshots.mark_dirty()
    return Response(status_code=204)


# The catch-all has a router of its own, included after the Groups routes
# (cloud/api/scim_groups.py) so that it only catches what none of them serves.
fallback = scim_router(included=True)


# --- anything else under /scim/v2 --------------------------------------------------------


@fallback.api_route(
    "/{unknown:path}",
    methods=["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def elsewhere(request: Request, unknown: str) -> ScimResponse:
    """An unknown SCIM path answers a SCIM 404 (a known one with another method, 405)."""
    matching = [
        route
        for route in [*router.routes, *scim_groups.router.routes]
        if getattr(route, "endpoint", None) is not elsewhere
        and route.matches(request.scope)[0] is not Match.NONE
    ]
    # `/Users/.search` names its own route: `/Users/{user_id}` does not count there.
    literal = [r for r in matching if "{" not in getattr(r, "path", "{")]
    allowed = ", ".join(
        sorted({m for r in literal or matching for m in getattr(r, "methods", ())} - {"HEAD"})
    )
    if allowed:
        return scim_error(405, "method not allowed here", headers={"Allow": allowed})
    return scim_error(404, f"{PREFIX}/{unknown} is not a SCIM endpoint of this server")
