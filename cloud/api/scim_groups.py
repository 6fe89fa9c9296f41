"""SCIM 2.0 Group routes at /scim/v2/Groups (people holding a Ruang role at a site together,
cloud/scim/groups.py). Included by cloud/api/scim.py, which holds the other SCIM routes.
"""

from __future__ import annotations

from fastapi import Request, Response

from cloud.api.scim_http import (
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
    names,
    patch_ops,
    read_json,
    scim_router,
    search_body,
)
from cloud.deps import DbDep, EngineDep
from cloud.scim import common, groups, schemas

router = scim_router()

# --- Groups ------------------------------------------------------------------------------


@router.get(
    "/Groups",
    response_class=ScimResponse,
    response_model=schemas.ListResponse,
    responses=errors(400),
)
async def list_groups(
    request: Request,
    conn: DbDep,
    client: ScimClient,
    filter_text: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> ScimResponse:
    # Members are read only when they will be shown (identity systems often leave them out).
    members = "members" not in names(excluded) and (
        not attributes or "members" in names(attributes)
    )
    page = await groups.search(
        conn,
        common.reach(client),
        base_url(request),
        filter_text=filter_text,
        start_index=start_index,
        count=count,
        members=members,
    )
    return listed(page, attributes, excluded)


@router.post(
    "/Groups/.search",
    response_class=ScimResponse,
    response_model=schemas.ListResponse,
    responses=errors(400),
    openapi_extra=body_of(schemas.SearchRequest),
)
async def search_groups(request: Request, conn: DbDep, client: ScimClient) -> ScimResponse:
    asked = await search_body(request)
    excluded, attributes = joined(asked.excludedAttributes), joined(asked.attributes)
    members = "members" not in names(excluded) and (
        not attributes or "members" in names(attributes)
    )
    page = await groups.search(
        conn,
        common.reach(client),
        base_url(request),
        filter_text=asked.filter,
        start_index=asked.startIndex,
        count=asked.count,
        members=members,
    )
    return listed(page, attributes, excluded)


@router.post(
    "/Groups",
    status_code=201,
    response_class=ScimResponse,
    response_model=schemas.Group,
    responses=errors(400, 409),
    openapi_extra=body_of(schemas.GroupIn),
)
async def create_group(request: Request, engine: EngineDep, client: ScimClient) -> ScimResponse:
    found = await groups.create(
        engine, common.reach(client), await read_json(request), client, base_url(request)
    )
    return answer(found, 201)


@router.get(
    "/Groups/{group_id}",
    response_class=ScimResponse,
    response_model=schemas.Group,
    responses=errors(404),
)
async def get_group(
    request: Request,
    conn: DbDep,
    client: ScimClient,
    group_id: str,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> ScimResponse:
    found = await groups.get(conn, common.reach(client), group_id, base_url(request))
    return answer(found, attributes=attributes, excluded=excluded)


@router.put(
    "/Groups/{group_id}",
    response_class=ScimResponse,
    response_model=schemas.Group,
    responses=errors(400, 404, 409, 412),
    openapi_extra=body_of(schemas.GroupIn),
)
async def replace_group(
    request: Request,
    engine: EngineDep,
    client: ScimClient,
    group_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    found = await groups.replace(
        engine,
        common.reach(client),
        group_id,
        await read_json(request),
        if_match,
        client,
        base_url(request),
    )
    return answer(found)


@router.patch(
    "/Groups/{group_id}",
    response_class=ScimResponse,
    response_model=schemas.Group,
    responses=errors(400, 404, 409, 412),
    openapi_extra=body_of(schemas.PatchRequest),
)
async def patch_group(
    request: Request,
    engine: EngineDep,
    client: ScimClient,
    group_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    ops = patch_ops(await read_json(request))
    found = await groups.modify(
        engine, common.reach(client), group_id, ops, if_match, client, base_url(request)
    )
    return answer(found)


@router.delete(
    "/Groups/{group_id}", status_code=204, response_class=Response, responses=errors(404, 412)
)
async def delete_group(
    request: Request,
    engine: EngineDep,
    client: ScimClient,
    group_id: str,
    if_match: IfMatch = None,
) -> Response:
    await groups.remove(engine, common.reach(client), group_id, if_match, client, base_url(request))
    return Response(status_code=204)
