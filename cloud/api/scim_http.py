"""What the SCIM routes share over HTTP: the `application/scim+json` response, SCIM Error
messages (RFC 7644 3.12) and the route class that answers every refusal with one, the
documented request bodies, the query parameters, and reading bodies and projections.
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

from cloud.errors import DomainError
from cloud.people.auth import Principal, require_roles
from cloud.problems import status_of
from cloud.scim import common, schemas
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


ScimClient = Annotated[Principal, require_roles("scim", "admin")]


def inline(model: type[BaseModel]) -> dict[str, Any]:
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


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    schema = inline(model)
    return {
        "requestBody": {
            "required": True,
            "content": {SCIM_JSON: {"schema": schema}, "application/json": {"schema": schema}},
        }
    }


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "invalid filter, path, value or syntax (`scimType` says which)",
        404: "no such resource among the ones this client reaches",
        409: "userName or displayName already taken (`scimType` uniqueness)",
        412: "If-Match names a version that is no longer the current one",
    }
    return {c: {"model": schemas.ScimErrorBody, "description": what[c]} for c in codes}


async def read_json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise invalid_syntax("the body is not JSON") from None
    if not isinstance(body, dict):
        raise invalid_syntax("the body is a JSON object")
    return body


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def names(text: str | None) -> list[str]:
    return [a.strip().lower() for a in (text or "").split(",") if a.strip()]


def project(
    resource: dict[str, Any], attributes: str | None, excluded: str | None
) -> dict[str, Any]:
    """`attributes` / `excludedAttributes` (top-level names, or `urn:...:name`)."""
    keep, drop = names(attributes), names(excluded)
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


def answer(
    resource: dict[str, Any],
    status: int = 200,
    *,
    attributes: str | None = None,
    excluded: str | None = None,
) -> ScimResponse:
    headers = {"ETag": resource["meta"]["version"], "Location": resource["meta"]["location"]}
    return ScimResponse(
        project(resource, attributes, excluded), status_code=status, headers=headers
    )


def listed(page: dict[str, Any], attributes: str | None, excluded: str | None) -> ScimResponse:
    page["Resources"] = [project(r, attributes, excluded) for r in page["Resources"]]
    return ScimResponse(page)


def patch_ops(body: dict[str, Any]) -> list[dict[str, Any]]:
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


async def search_body(request: Request) -> schemas.SearchRequest:
    body = await read_json(request)
    if SEARCH not in (body.get("schemas") or []):
        raise invalid_syntax(f"schemas must list {SEARCH}")
    try:
        return schemas.SearchRequest.model_validate(body)
    except ValueError as exc:
        raise invalid_value(f"not a SearchRequest: {str(exc).splitlines()[0]}") from None


def joined(names: list[str] | None) -> str | None:
    return ",".join(names) if names else None


def scim_router(*, included: bool = False) -> APIRouter:
    """A router of SCIM routes under /scim/v2; `included`: routes outside the document
    (the catch-all), which need no tag or documented answers."""
    if included:
        return APIRouter(prefix=PREFIX, route_class=ScimRoute)
    return APIRouter(
        prefix=PREFIX,
        tags=["scim"],
        route_class=ScimRoute,
        # Every SCIM refusal of a request is a 400 with its scimType (never 422).
        responses={
            400: {"model": schemas.ScimErrorBody, "description": "invalid request (scimType)"}
        },
    )
