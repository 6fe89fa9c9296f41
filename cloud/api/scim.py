"""SCIM 2.0 routes (RFC 7643/7644) at /scim/v2: Users, Groups and the discovery documents.

For a ministry's identity system (role `scim`, acting on the sites in its token) and
admins. Everything here answers `application/scim+json`, errors included: a route class
turns domain errors, refused tokens and unreadable requests into SCIM Error messages with
their `scimType`. A write that revoked badges re-publishes the node snapshots.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import select
from starlette.routing import Match

from cloud.api.snapshots import PublisherDep
from cloud.db.tables import SITES
from cloud.deps import DbDep, EngineDep
from cloud.errors import DomainError
from cloud.people.auth import Principal, require_roles
from cloud.problems import status_of
from cloud.scim import common, filters, groups, schemas, users
from cloud.scim.common import invalid_syntax, invalid_value
from cloud.scim.schemas import ERROR, PATCH_OP, SCIM_JSON, SEARCH

PREFIX = "/scim/v2"


class ScimResponse(JSONResponse):
    media_type = SCIM_JSON


def scim_error(
    status: int, detail: str | None, scim_type: str | None = None, headers: Any = None
) -> ScimResponse:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    if detail:
        body["detail"] = detail
    return ScimResponse(body, status_code=status, headers=dict(headers or {}))


class ScimRoute(APIRoute):
    """Answers every refusal of its routes as a SCIM Error (RFC 7644 section 3.12)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()))
                return scim_error(400, f"{where}: {first.get('msg', 'invalid')}", "invalidValue")
            except DomainError as exc:
                status = status_of(exc)
                scim_type = exc.extensions.get("scim_type")
                if status == 422:
                    status, scim_type = 400, scim_type or "invalidValue"
                elif status == 409:
                    scim_type = scim_type or "uniqueness"
                return scim_error(status, exc.detail or exc.title, scim_type)
            except HTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else None
                return scim_error(exc.status_code, detail, headers=exc.headers)

        return run


router = APIRouter(
    prefix=PREFIX,
    tags=["scim"],
    route_class=ScimRoute,
    # Every SCIM refusal of a request is a 400 with its scimType (never 422).
    responses={400: {"model": schemas.ScimErrorBody, "description": "invalid request (scimType)"}},
)
ScimClient = Annotated[Principal, require_roles("scim", "admin")]


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its definitions written in place (for request bodies)."""
    document = model.model_json_schema()
    defs = document.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.rsplit("/", 1)[1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(document)
    return result


def _body(model: type[BaseModel]) -> dict[str, Any]:
    schema = _inline(model)
    return {
        "requestBody": {
            "required": True,
            "content": {SCIM_JSON: {"schema": schema}, "application/json": {"schema": schema}},
        }
    }


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "invalid filter, path, value or syntax (`scimType` says which)",
        404: "no such resource among the ones this client reaches",
        409: "userName or displayName already taken (`scimType` uniqueness)",
        412: "If-Match names a version that is no longer the current one",
    }
    return {c: {"model": schemas.ScimErrorBody, "description": what[c]} for c in codes}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise invalid_syntax("the body is not JSON") from None
    if not isinstance(body, dict):
        raise invalid_syntax("the body is a JSON object")
    return body


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _names(text: str | None) -> list[str]:
    return [a.strip().lower() for a in (text or "").split(",") if a.strip()]


def _project(
    resource: dict[str, Any], attributes: str | None, excluded: str | None
) -> dict[str, Any]:
    """`attributes` / `excludedAttributes` (top-level names, or `urn:...:name`)."""
    keep, drop = _names(attributes), _names(excluded)
    always = {"id", "schemas", "meta"}
    if keep:
        wanted = {common.split_urn(a)[1].split(".")[0] for a in keep}
        return {
            k: v
            for k, v in resource.items()
            if k.lower() in always | wanted or k.startswith("urn:")
        }
    if drop:
        gone = {common.split_urn(a)[1].split(".")[0] for a in drop} - always
        return {k: v for k, v in resource.items() if k.lower() not in gone}
    return resource


def _answer(
    resource: dict[str, Any],
    status: int = 200,
    *,
    attributes: str | None = None,
    excluded: str | None = None,
) -> ScimResponse:
    headers = {"ETag": resource["meta"]["version"], "Location": resource["meta"]["location"]}
    return ScimResponse(
        _project(resource, attributes, excluded), status_code=status, headers=headers
    )


def _listed(page: dict[str, Any], attributes: str | None, excluded: str | None) -> ScimResponse:
    page["Resources"] = [_project(r, attributes, excluded) for r in page["Resources"]]
    return ScimResponse(page)


def _patch_ops(body: dict[str, Any]) -> list[dict[str, Any]]:
    if PATCH_OP not in (body.get("schemas") or []):
        raise invalid_syntax(f"schemas must list {PATCH_OP}")
    try:
        request = schemas.PatchRequest.model_validate(body)
    except ValueError as exc:
        raise invalid_value(f"not a PatchOp: {str(exc).splitlines()[0]}") from None
    return [op.model_dump(exclude_unset=True) for op in request.Operations]


Filter = Annotated[
    str | None, Query(alias="filter", max_length=1000, description='e.g. userName eq "budi"')
]
StartIndex = Annotated[int | None, Query(alias="startIndex", ge=-(2**31), le=2**31)]
Count = Annotated[int | None, Query(ge=-(2**31), le=2**31)]
Attributes = Annotated[str | None, Query(max_length=1000)]
Excluded = Annotated[str | None, Query(alias="excludedAttributes", max_length=1000)]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=1000)]


# --- discovery ---------------------------------------------------------------------------


@router.get("/ServiceProviderConfig", response_class=ScimResponse)
async def service_provider_config(request: Request, client: ScimClient) -> ScimResponse:
    return ScimResponse(schemas.service_provider_config(_base(request)))


@router.get("/ResourceTypes", response_class=ScimResponse, response_model=schemas.ListResponse)
async def resource_types(request: Request, client: ScimClient) -> ScimResponse:
    found = schemas.resource_types(_base(request))
    return ScimResponse(common.list_response(found, len(found), 0))


@router.get("/ResourceTypes/{resource_type}", response_class=ScimResponse, responses=_errors(404))
async def resource_type(request: Request, client: ScimClient, resource_type: str) -> ScimResponse:
    for found in schemas.resource_types(_base(request)):
        if found["id"] == resource_type:
            return ScimResponse(found)
    raise common.not_found("ResourceType", resource_type)


async def _schemas(request: Request, conn: Any, client: Principal) -> list[dict[str, Any]]:
    scope = common.reach(client)
    stmt = select(SITES.c.id).order_by(SITES.c.id)
    if scope is not None:
        stmt = stmt.where(SITES.c.id.in_(sorted(scope)))
    sites = list(await conn.scalars(stmt))
    return schemas.schemas(_base(request), sites, list(groups.GRANTABLE))


@router.get("/Schemas", response_class=ScimResponse, response_model=schemas.ListResponse)
async def all_schemas(request: Request, conn: DbDep, client: ScimClient) -> ScimResponse:
    found = await _schemas(request, conn, client)
    return ScimResponse(common.list_response(found, len(found), 0))


@router.get("/Schemas/{schema_id}", response_class=ScimResponse, responses=_errors(404))
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
    responses=_errors(400),
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
        _base(request),
        filter_text=filter_text,
        start_index=start_index,
        count=count,
    )
    return _listed(page, attributes, excluded)


async def _search_body(request: Request) -> schemas.SearchRequest:
    body = await _json(request)
    if SEARCH not in (body.get("schemas") or []):
        raise invalid_syntax(f"schemas must list {SEARCH}")
    try:
        return schemas.SearchRequest.model_validate(body)
    except ValueError as exc:
        raise invalid_value(f"not a SearchRequest: {str(exc).splitlines()[0]}") from None


def _joined(names: list[str] | None) -> str | None:
    return ",".join(names) if names else None


@router.post(
    "/Users/.search",
    response_class=ScimResponse,
    response_model=schemas.ListResponse,
    responses=_errors(400),
    openapi_extra=_body(schemas.SearchRequest),
)
async def search_users(request: Request, conn: DbDep, client: ScimClient) -> ScimResponse:
    """The listing with its query in a body (RFC 7644 3.4.3), e.g. to keep a filter out of logs."""
    asked = await _search_body(request)
    page = await users.search(
        conn,
        common.reach(client),
        _base(request),
        filter_text=asked.filter,
        start_index=asked.startIndex,
        count=asked.count,
    )
    return _listed(page, _joined(asked.attributes), _joined(asked.excludedAttributes))


@router.post(
    "/.search",
    response_class=ScimResponse,
    response_model=schemas.ListResponse,
    responses=_errors(400),
    openapi_extra=_body(schemas.SearchRequest),
)
async def search_all(request: Request, conn: DbDep, client: ScimClient) -> ScimResponse:
    """Users, then Groups, that match; a filter naming what only one of them has finds
    only that one (RFC 7644 3.4.2.1)."""
    asked = await _search_body(request)
    scope, base = common.reach(client), _base(request)
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
    return _listed(page, _joined(asked.attributes), _joined(asked.excludedAttributes))


@router.post(
    "/Users",
    status_code=201,
    response_class=ScimResponse,
    response_model=schemas.User,
    responses=_errors(400, 409),
    openapi_extra=_body(schemas.UserIn),
)
async def create_user(
    request: Request, engine: EngineDep, client: ScimClient, snapshots: PublisherDep
) -> ScimResponse:
    written = await users.create(
        engine, common.reach(client), await _json(request), client, _base(request)
    )
    if written.badges_revoked:
        snapshots.mark_dirty()
    return _answer(written.resource, 201)


@router.get(
    "/Users/{user_id}",
    response_class=ScimResponse,
    response_model=schemas.User,
    responses=_errors(404),
)
async def get_user(
    request: Request,
    conn: DbDep,
    client: ScimClient,
    user_id: str,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> ScimResponse:
    found = await users.get(conn, common.reach(client), user_id, _base(request))
    return _answer(found, attributes=attributes, excluded=excluded)


@router.put(
    "/Users/{user_id}",
    response_class=ScimResponse,
    response_model=schemas.User,
    responses=_errors(400, 404, 409, 412),
    openapi_extra=_body(schemas.UserIn),
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
        await _json(request),
        if_match,
        client,
        _base(request),
    )
    if written.badges_revoked:
        snapshots.mark_dirty()
    return _answer(written.resource)


@router.patch(
    "/Users/{user_id}",
    response_class=ScimResponse,
    response_model=schemas.User,
    responses=_errors(400, 404, 409, 412),
    openapi_extra=_body(schemas.PatchRequest),
)
async def patch_user(
    request: Request,
    engine: EngineDep,
    client: ScimClient,
    snapshots: PublisherDep,
    user_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    ops = _patch_ops(await _json(request))
    written = await users.modify(
        engine, common.reach(client), user_id, ops, if_match, client, _base(request)
    )
    if written.badges_revoked:
        snapshots.mark_dirty()
    return _answer(written.resource)


@router.delete(
    "/Users/{user_id}", status_code=204, response_class=Response, responses=_errors(404, 412)
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
        engine, common.reach(client), user_id, if_match, client, _base(request)
    )
    if revoked:
        snapshots.mark_dirty()
    return Response(status_code=204)


# --- Groups ------------------------------------------------------------------------------


@router.get(
    "/Groups",
    response_class=ScimResponse,
    response_model=schemas.ListResponse,
    responses=_errors(400),
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
    members = "members" not in _names(excluded) and (
        not attributes or "members" in _names(attributes)
    )
    page = await groups.search(
        conn,
        common.reach(client),
        _base(request),
        filter_text=filter_text,
        start_index=start_index,
        count=count,
        members=members,
    )
    return _listed(page, attributes, excluded)


@router.post(
    "/Groups/.search",
    response_class=ScimResponse,
    response_model=schemas.ListResponse,
    responses=_errors(400),
    openapi_extra=_body(schemas.SearchRequest),
)
async def search_groups(request: Request, conn: DbDep, client: ScimClient) -> ScimResponse:
    asked = await _search_body(request)
    excluded, attributes = _joined(asked.excludedAttributes), _joined(asked.attributes)
    members = "members" not in _names(excluded) and (
        not attributes or "members" in _names(attributes)
    )
    page = await groups.search(
        conn,
        common.reach(client),
        _base(request),
        filter_text=asked.filter,
        start_index=asked.startIndex,
        count=asked.count,
        members=members,
    )
    return _listed(page, attributes, excluded)


@router.post(
    "/Groups",
    status_code=201,
    response_class=ScimResponse,
    response_model=schemas.Group,
    responses=_errors(400, 409),
    openapi_extra=_body(schemas.GroupIn),
)
async def create_group(request: Request, engine: EngineDep, client: ScimClient) -> ScimResponse:
    found = await groups.create(
        engine, common.reach(client), await _json(request), client, _base(request)
    )
    return _answer(found, 201)


@router.get(
    "/Groups/{group_id}",
    response_class=ScimResponse,
    response_model=schemas.Group,
    responses=_errors(404),
)
async def get_group(
    request: Request,
    conn: DbDep,
    client: ScimClient,
    group_id: str,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> ScimResponse:
    found = await groups.get(conn, common.reach(client), group_id, _base(request))
    return _answer(found, attributes=attributes, excluded=excluded)


@router.put(
    "/Groups/{group_id}",
    response_class=ScimResponse,
    response_model=schemas.Group,
    responses=_errors(400, 404, 409, 412),
    openapi_extra=_body(schemas.GroupIn),
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
        await _json(request),
        if_match,
        client,
        _base(request),
    )
    return _answer(found)


@router.patch(
    "/Groups/{group_id}",
    response_class=ScimResponse,
    response_model=schemas.Group,
    responses=_errors(400, 404, 409, 412),
    openapi_extra=_body(schemas.PatchRequest),
)
async def patch_group(
    request: Request,
    engine: EngineDep,
    client: ScimClient,
    group_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    ops = _patch_ops(await _json(request))
    found = await groups.modify(
        engine, common.reach(client), group_id, ops, if_match, client, _base(request)
    )
    return _answer(found)


@router.delete(
    "/Groups/{group_id}", status_code=204, response_class=Response, responses=_errors(404, 412)
)
async def delete_group(
    request: Request,
    engine: EngineDep,
    client: ScimClient,
    group_id: str,
    if_match: IfMatch = None,
) -> Response:
    await groups.remove(engine, common.reach(client), group_id, if_match, client, _base(request))
    return Response(status_code=204)


# --- anything else under /scim/v2 --------------------------------------------------------


@router.api_route(
    "/{unknown:path}",
    methods=["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def elsewhere(request: Request, unknown: str) -> ScimResponse:
    """An unknown SCIM path answers a SCIM 404 (a known one with another method, 405)."""
    matching = [
        route
        for route in router.routes
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
