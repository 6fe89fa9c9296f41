"""The published OpenAPI document, completed with the error answers every route can give.

Routes document the errors of their own logic (404 unknown desk, 409 conflict,
...). What the framework adds to every route is documented here, in one pass
over the generated document, so it cannot be forgotten on a new route: 401 and
403 wherever a bearer token is asked for, 422 wherever there is input to
validate, and `application/problem+json` as the body of every error, because
that is what cloud/problems.py sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from cloud.api_types import Problem
from cloud.problems import PROBLEM_JSON
from cloud.scim.schemas import SCIM_JSON, ScimErrorBody

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# The SCIM routes (tag `scim`) answer errors as SCIM Error messages (RFC 7644 3.12) instead.
_SCIM_ERROR_REF = {"$ref": "#/components/schemas/ScimErrorBody"}
_SECURED = {
    "401": "no bearer token or session, or the token is invalid or expired",
    "403": "the token's roles or sites do not allow this; or a cookie-authenticated write "
    "without the X-Ruang-CSRF header",
}
_INVALID = "the request does not match this schema; `errors` lists {loc, msg, type}"
_UNREADABLE = "the body could not be read as the declared content type"
# FastAPI's own 422 body, replaced by the problem document above.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _is_error(code: str) -> bool:
    return code[:1] in ("4", "5")


def complete_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Adds the framework's errors to every operation and types every error as a problem."""
    for item in document.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if operation.get("security"):
                for code, description in _SECURED.items():
                    responses.setdefault(code, {"description": description})
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("422", {"description": _INVALID})
            if operation.get("requestBody"):
                responses.setdefault("400", {"description": _UNREADABLE})
            scim = "scim" in operation.get("tags", ())
            media, ref = (SCIM_JSON, _SCIM_ERROR_REF) if scim else (PROBLEM_JSON, _PROBLEM_REF)
            for code, response in responses.items():
                if _is_error(code):
                    response["content"] = {media: {"schema": dict(ref)}}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["ScimErrorBody"] = ScimErrorBody.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Makes `app` publish the completed document at /openapi.json."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_error_responses(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
