"""What SCIM users and groups share: versions (ETags), If-Match, paging, the caller's reach,
attribute names without their schema URN, and SCIM's error kinds (`scimType`).

Reach: a provisioning client (role `scim`) acts on the people and groups of the sites in
its token; an admin on all, including people and groups without a site. Anything else
reads as not existing (404), as everywhere in the API (cloud/people/access.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.errors import Conflict, Invalid, NotFound, PreconditionFailed
from cloud.people.access import Scope, site_scope
from cloud.people.auth import Principal
from cloud.scim.schemas import (
    DEFAULT_COUNT,
    ENTERPRISE,
    GROUP,
    LIST,
    MAX_COUNT,
    RUANG_GROUP,
    RUANG_USER,
    USER,
)

SCIM_ROLES = ("scim",)
KNOWN_URNS = (USER, GROUP, ENTERPRISE, RUANG_USER, RUANG_GROUP)


def reach(user: Principal) -> Scope:
    """The sites the caller provisions: None for admins (every site and none)."""
    return site_scope(user, SCIM_ROLES)


def in_reach(scope: Scope, site: str | None) -> bool:
    return scope is None or (site is not None and site in scope)


def default_site(scope: Scope, asked: str | None) -> str | None:
    """The home site of something new: the one asked for, else the client's only site."""
    if asked is not None:
        if not in_reach(scope, asked):
            raise invalid_value(f"site {asked!r} is not one this client provisions")
        return asked
    if scope is None:
        return None
    if len(scope) == 1:
        return next(iter(scope))
    raise invalid_value(
        f"say the site in the Ruang extension's `site` (this client provisions {len(scope)} sites)"
    )


# One SCIM write at a time on SQLite: its writers would otherwise wait on each other's
# file lock in its busy handler, which sleeps (an identity system's sync sends many at once).
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction (`engine.begin()`), queued behind the others on SQLite."""
    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            yield conn
        return
    lock = _SQLITE_WRITERS.setdefault(engine.sync_engine, asyncio.Lock())
    async with lock, engine.begin() as conn:
        yield conn


def now() -> datetime:
    return datetime.now(UTC)


def stamp(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def version_of(resource: dict[str, Any]) -> str:
    """A weak ETag over everything the resource shows but its meta: any change, by SCIM,
    the roster import or an admin, gives a new one."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def check_if_match(if_match: str | None, current: str) -> None:
    """412 unless `If-Match` is absent, `*`, or names the current version."""
    if if_match is None:
        return
    wanted = [t.strip() for t in if_match.split(",") if t.strip()]
    bare = current.removeprefix("W/")
    if "*" in wanted or any(t.removeprefix("W/") == bare for t in wanted):
        return
    raise PreconditionFailed(
        f"the resource is at version {current}, not {if_match}",
        title="Version mismatch",
        scim_type=None,
    )


def invalid_value(detail: str) -> Invalid:
    return Invalid(detail, title="Invalid value", scim_type="invalidValue")


def invalid_syntax(detail: str) -> Invalid:
    return Invalid(detail, title="Invalid syntax", scim_type="invalidSyntax")


def not_found(kind: str, ident: str) -> NotFound:
    return NotFound(f"{kind} {ident!r} is unknown", title=f"{kind} not found")


def taken(detail: str) -> Conflict:
    return Conflict(detail, title="Not unique", scim_type="uniqueness")


def require_schema(body: dict[str, Any], core: str) -> None:
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or core not in schemas:
        raise invalid_syntax(f"schemas must list {core}")


def paging(start_index: int | None, count: int | None) -> tuple[int, int]:
    """(offset, limit) of a page; startIndex below 1 counts as 1, count is capped."""
    start = max(1, start_index or 1)
    limit = DEFAULT_COUNT if count is None else max(0, min(count, MAX_COUNT))
    return start - 1, limit


def list_response(resources: Sequence[dict[str, Any]], total: int, offset: int) -> dict[str, Any]:
    return {
        "schemas": [LIST],
        "totalResults": total,
        "startIndex": offset + 1,
        "itemsPerPage": len(resources),
        "Resources": list(resources),
    }


def split_urn(attr: str) -> tuple[str, str]:
    """('urn' or '', attribute) of a lower-cased attribute path (`urn:...:user:department`)."""
    for urn in KNOWN_URNS:
        prefix = urn.lower() + ":"
        if attr.startswith(prefix):
            return ("" if urn in (USER, GROUP) else urn), attr[len(prefix) :]
    return "", attr


def canonical_keys(value: Any, names: dict[str, str]) -> Any:
    """`value` with every known attribute name in its canonical case (names are
    case-insensitive in SCIM); unknown names are kept as sent."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = names.get(key.lower(), key) if isinstance(key, str) else key
            out[name] = canonical_keys(item, names)
        return out
    if isinstance(value, list):
        return [canonical_keys(v, names) for v in value]
    return value
