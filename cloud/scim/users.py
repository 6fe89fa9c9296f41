"""SCIM Users are people of the roster (docs/scim.md has the attribute mapping).

A ministry's identity system creates, updates, deactivates and deletes them. Setting
`active` to false, or DELETE, deprovisions: every active badge of the person is revoked
in the same transaction, the write is audit-logged (cloud/admin/audit.py), and the
caller re-publishes the node snapshots (cloud/fleet/snapshots.py) so no node accepts
the badges any more. DELETE keeps the row (bookings, check-ins and the audit log point
at it) but marks it removed: SCIM answers 404 for it, and a later POST of the same
userName brings the same person back. Badges stay revoked on reactivation: a returning
person gets a badge issued again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Row, and_, exists, func, literal, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.admin import audit
from cloud.db.tables import BADGES, PEOPLE, PERSON_GROUP_MEMBERS, PERSON_GROUPS, SITES
from cloud.people import sessions
from cloud.people.access import Scope
from cloud.people.auth import Principal
from cloud.scim import common, filters, patch
from cloud.scim.schemas import ENTERPRISE, RUANG_USER, USER, UserIn

# Canonical spelling of every attribute a User body may carry (names are case-insensitive).
NAMES = {
    n.lower(): n
    for n in (
        "schemas",
        "id",
        "externalId",
        "userName",
        "name",
        "formatted",
        "givenName",
        "familyName",
        "displayName",
        "active",
        "emails",
        "value",
        "type",
        "primary",
        "groups",
        "display",
        "meta",
        "organization",
        "department",
        "site",
        "$ref",
        ENTERPRISE,
        RUANG_USER,
    )
}
MULTI = frozenset({"emails", "groups"})
_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
LIVE = PEOPLE.c.removed_at.is_(None)
USER_NAME = func.coalesce(PEOPLE.c.user_name, PEOPLE.c.id)


@dataclass
class Written:
    """What a write did: the resource now, and how many badges it revoked."""

    resource: dict[str, Any]
    badges_revoked: int = 0


# --- reading -----------------------------------------------------------------------------


async def _groups(conn: AsyncConnection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await conn.execute(
        select(PERSON_GROUP_MEMBERS.c.person_id, PERSON_GROUPS.c.id, PERSON_GROUPS.c.display_name)
        .join(PERSON_GROUPS, PERSON_GROUPS.c.id == PERSON_GROUP_MEMBERS.c.group_id)
        .where(PERSON_GROUP_MEMBERS.c.person_id.in_(ids))
        .order_by(PERSON_GROUPS.c.id)
    )
    for person, group, name in rows:
        out[person].append({"value": group, "display": name})
    return out


def to_resource(row: Any, base: str, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """A person as a SCIM User."""
    r = row._mapping if isinstance(row, Row) else row
    name = {
        k: v
        for k, v in (
            ("formatted", r["name"]),
            ("givenName", r["given_name"]),
            ("familyName", r["family_name"]),
        )
        if v
    }
    resource: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE, RUANG_USER],
        "id": r["id"],
        "userName": r["user_name"] or r["id"],
        "name": name,
        "displayName": r["name"],
        "active": bool(r["active"]),
    }
    if r["external_id"]:
        resource["externalId"] = r["external_id"]
    if r["email"]:
        resource["emails"] = [{"value": r["email"], "type": "work"}]
    enterprise = {k: v for k, v in (("organization", r["agency"]), ("department", r["unit"])) if v}
    if enterprise:
        resource[ENTERPRISE] = enterprise
    if r["site_id"]:
        resource[RUANG_USER] = {"site": r["site_id"]}
    if groups:
        resource["groups"] = [
            {**g, "$ref": f"{base}/Groups/{g['value']}", "type": "direct"} for g in groups
        ]
    resource["meta"] = {
        "resourceType": "User",
        "created": common.stamp(r["created_at"]),
        "lastModified": common.stamp(r["updated_at"] or r["created_at"]),
        "location": f"{base}/Users/{r['id']}",
        "version": common.version_of(resource),
    }
    resource["meta"] = {k: v for k, v in resource["meta"].items() if v is not None}
    return resource


def _in_scope(scope: Scope) -> ColumnElement[bool]:
    return true() if scope is None else PEOPLE.c.site_id.in_(sorted(scope))


async def _row(conn: AsyncConnection, scope: Scope, person_id: str, *, lock: bool = False) -> Any:
    stmt = select(PEOPLE).where(PEOPLE.c.id == person_id, LIVE, _in_scope(scope))
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise common.not_found("User", person_id)
    return row


async def get(conn: AsyncConnection, scope: Scope, person_id: str, base: str) -> dict[str, Any]:
    row = await _row(conn, scope, person_id)
    return to_resource(row, base, (await _groups(conn, [row.id]))[row.id])


def _column(attr: str) -> filters.Column | None:
    urn, name = common.split_urn(attr)
    if urn == ENTERPRISE:
        return {
            "organization": filters.Column(PEOPLE.c.agency),
            "department": filters.Column(PEOPLE.c.unit),
        }.get(name)
    if urn == RUANG_USER:
        return filters.Column(PEOPLE.c.site_id, case_exact=True) if name == "site" else None
    return {
        "id": filters.Column(PEOPLE.c.id, case_exact=True),
        "username": filters.Column(USER_NAME),
        "externalid": filters.Column(PEOPLE.c.external_id, case_exact=True),
        "displayname": filters.Column(PEOPLE.c.name),
        "name.formatted": filters.Column(PEOPLE.c.name),
        "name.givenname": filters.Column(PEOPLE.c.given_name),
        "name.familyname": filters.Column(PEOPLE.c.family_name),
        "emails": filters.Column(PEOPLE.c.email),
        "emails.value": filters.Column(PEOPLE.c.email),
        "active": filters.Column(PEOPLE.c.active, kind="boolean"),
        "meta.created": filters.Column(PEOPLE.c.created_at, kind="datetime"),
        "meta.lastmodified": filters.Column(PEOPLE.c.updated_at, kind="datetime"),
    }.get(name)


def _multi(attr: str, build: Any) -> ColumnElement[bool] | None:
    if common.split_urn(attr)[1] == "emails":
        # One address is kept, as the work address: the item exists when it is set.
        item = {
            "value": filters.Column(PEOPLE.c.email),
            "type": filters.Column(literal("work")),
            "primary": filters.Column(literal(True), kind="boolean"),
        }
        return and_(PEOPLE.c.email.is_not(None), build(item.get))
    if common.split_urn(attr)[1] == "groups":
        group = {"value": filters.Column(PERSON_GROUP_MEMBERS.c.group_id, case_exact=True)}
        return exists().where(PERSON_GROUP_MEMBERS.c.person_id == PEOPLE.c.id, build(group.get))
    return None


async def search(
    conn: AsyncConnection,
    scope: Scope,
    base: str,
    *,
    filter_text: str | None,
    start_index: int | None,
    count: int | None,
) -> dict[str, Any]:
    where: list[ColumnElement[bool]] = [LIVE, _in_scope(scope)]
    if filter_text:
        where.append(filters.to_sql(filters.parse(filter_text), _column, _multi))
    offset, limit = common.paging(start_index, count)
    total = int(await conn.scalar(select(func.count()).select_from(PEOPLE).where(*where)) or 0)
    rows: Sequence[Any] = []
    if limit:
        stmt = select(PEOPLE).where(*where).order_by(PEOPLE.c.id).offset(offset).limit(limit)
        rows = (await conn.execute(stmt)).all()
    groups = await _groups(conn, [r.id for r in rows])
    return common.list_response([to_resource(r, base, groups[r.id]) for r in rows], total, offset)


# --- writing -----------------------------------------------------------------------------


def _values(
    body: dict[str, Any], *, prefer_formatted: bool = False
) -> tuple[dict[str, Any], str | None]:
    """The people columns a User body sets, and the site it asks for.

    displayName and name.formatted are both the person's one name: displayName wins,
    unless `prefer_formatted` (a PATCH changed name.formatted alone)."""
    common.require_schema(body, USER)
    body = common.canonical_keys(body, NAMES)
    try:
        user = UserIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise common.invalid_value(f"{where}: {first['msg']}") from None
    name = user.name
    given = name.givenName if name else None
    family = name.familyName if name else None
    formatted = name.formatted if name else None
    shown = (
        (formatted if prefer_formatted else None)
        or user.displayName
        or formatted
        or " ".join(p for p in (given, family) if p)
        or user.userName
    )
    email = None
    if user.emails:
        chosen = next((e for e in user.emails if e.primary), user.emails[0])
        email = chosen.value.strip()
        if not _EMAIL.match(email) or len(email) > 254:
            raise common.invalid_value(f"{email!r} is not an e-mail address")
    enterprise = user.enterprise
    values: dict[str, Any] = {
        "user_name": user.userName.strip(),
        "external_id": user.externalId,
        "name": shown.strip()[:200],
        "given_name": given[:200] if given else None,
        "family_name": family[:200] if family else None,
        "email": email,
        "agency": enterprise.organization[:200] if enterprise and enterprise.organization else None,
        "unit": enterprise.department[:200] if enterprise and enterprise.department else None,
    }
    if not values["user_name"]:
        raise common.invalid_value("userName is empty")
    if user.active is not None:
        values["active"] = user.active
    return values, (user.ruang.site if user.ruang else None)


async def _check_site(conn: AsyncConnection, site: str | None) -> None:
    if site is not None and await conn.scalar(select(SITES.c.id).where(SITES.c.id == site)) is None:
        raise common.invalid_value(f"site {site!r} is unknown")


async def _user_name_holder(conn: AsyncConnection, user_name: str) -> Any:
    return (
        await conn.execute(
            select(PEOPLE.c.id, PEOPLE.c.removed_at, PEOPLE.c.site_id)
            .where(func.lower(USER_NAME) == user_name.lower())
            .order_by(PEOPLE.c.removed_at.is_(None).desc())
        )
    ).first()


async def _revoke_badges(conn: AsyncConnection, person_id: str) -> int:
    """Deprovisioning: every active badge revoked and every session ended (the person's
    session epoch, cloud/people/sessions.py), in the caller's transaction."""
    await sessions.mark_active(conn, person_id, False)
    result = await conn.execute(
        update(BADGES)
        .where(BADGES.c.person_id == person_id, BADGES.c.status == "active")
        .values(status="revoked", revoked_at=common.now())
    )
    return int(result.rowcount or 0)


async def _audit(
    conn: AsyncConnection,
    actor: Principal,
    action: str,
    person_id: str,
    site: str | None,
    detail: dict[str, Any],
) -> None:
    await audit.record(
        conn, actor=actor, action=action, target=f"person:{person_id}", detail=detail, site=site
    )


def _changed(before: Any, values: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in values.items() if before._mapping.get(k) != v)


async def create(
    engine: AsyncEngine, scope: Scope, body: dict[str, Any], actor: Principal, base: str
) -> Written:
    values, asked_site = _values(body)
    site = common.default_site(scope, asked_site)
    async with common.writing(engine) as conn:
        await _check_site(conn, site)
        holder = await _user_name_holder(conn, values["user_name"])
        stamp = common.now()
        values |= {"site_id": site, "updated_at": stamp, "active": values.get("active", True)}
        if holder is not None and holder.removed_at is None:
            raise common.taken(f"userName {values['user_name']!r} is taken")
        if holder is not None and common.in_reach(scope, holder.site_id):
            # Deleted earlier, provisioned again: the same person comes back.
            person_id = holder.id
            await conn.execute(
                update(PEOPLE).where(PEOPLE.c.id == person_id).values(**values, removed_at=None)
            )
            action = "scim.user_restore"
        else:
            person_id = values["user_name"]
            if not _ID.match(person_id) or await conn.scalar(
                select(PEOPLE.c.id).where(PEOPLE.c.id == person_id)
            ):
                person_id = str(uuid.uuid4())
            await conn.execute(
                PEOPLE.insert().values(
                    id=person_id, kind="asn", role="asn", created_at=stamp, **values
                )
            )
            action = "scim.user_create"
        revoked = 0 if values["active"] else await _revoke_badges(conn, person_id)
        await _audit(
            conn,
            actor,
            action,
            person_id,
            site,
            {"fields": sorted(values), "active": values["active"]},
        )
        if action == "scim.user_create":
            # Nothing but what was just written: no need to read it back (bulk syncs).
            fresh = {**values, "id": person_id, "created_at": stamp}
            return Written(to_resource(fresh, base, []), revoked)
        row = await _row(conn, None, person_id)
        return Written(
            to_resource(row, base, (await _groups(conn, [person_id]))[person_id]), revoked
        )


async def _write(
    conn: AsyncConnection,
    scope: Scope,
    before: Any,
    values: dict[str, Any],
    asked_site: str | None,
    actor: Principal,
    base: str,
) -> Written:
    person_id = before.id
    if asked_site is not None and asked_site != before.site_id:
        if not common.in_reach(scope, asked_site):
            raise common.invalid_value(f"site {asked_site!r} is not one this client provisions")
        await _check_site(conn, asked_site)
        values["site_id"] = asked_site
    if values["user_name"].lower() != (before.user_name or before.id).lower():
        holder = await _user_name_holder(conn, values["user_name"])
        if holder is not None and holder.id != person_id and holder.removed_at is None:
            raise common.taken(f"userName {values['user_name']!r} is taken")
    if values["user_name"] == before.id and before.user_name is None:
        values["user_name"] = None  # still the id: nothing of its own to keep
    changed = _changed(before, values)
    revoked = 0
    if changed:
        await conn.execute(
            update(PEOPLE).where(PEOPLE.c.id == person_id).values(**values, updated_at=common.now())
        )
        site = values.get("site_id", before.site_id)
        if "active" in changed and not values["active"]:
            revoked = await _revoke_badges(conn, person_id)
            await _audit(
                conn, actor, "scim.user_deactivate", person_id, site, {"badges_revoked": revoked}
            )
        if "active" in changed and values["active"]:
            await sessions.mark_active(conn, person_id, True)  # may sign in again
        others = [c for c in changed if c != "active"]
        if others or ("active" in changed and values["active"]):
            await _audit(
                conn,
                actor,
                "scim.user_update",
                person_id,
                site,
                {"fields": changed, "active": values.get("active", before.active)},
            )
    row = await _row(conn, None, person_id)
    return Written(to_resource(row, base, (await _groups(conn, [person_id]))[person_id]), revoked)


async def replace(
    engine: AsyncEngine,
    scope: Scope,
    person_id: str,
    body: dict[str, Any],
    if_match: str | None,
    actor: Principal,
    base: str,
) -> Written:
    values, asked_site = _values(body)
    async with common.writing(engine) as conn:
        before = await _row(conn, scope, person_id, lock=True)
        current = to_resource(before, base, (await _groups(conn, [person_id]))[person_id])
        common.check_if_match(if_match, current["meta"]["version"])
        return await _write(conn, scope, before, values, asked_site, actor, base)


async def modify(
    engine: AsyncEngine,
    scope: Scope,
    person_id: str,
    operations: list[dict[str, Any]],
    if_match: str | None,
    actor: Principal,
    base: str,
) -> Written:
    async with common.writing(engine) as conn:
        before = await _row(conn, scope, person_id, lock=True)
        current = to_resource(before, base, (await _groups(conn, [person_id]))[person_id])
        common.check_if_match(if_match, current["meta"]["version"])
        patched = patch.apply(current, operations, NAMES, MULTI)
        patched.pop("groups", None)
        formatted = (
            patched.get("name", {}).get("formatted")
            if isinstance(patched.get("name"), dict)
            else None
        )
        prefer = formatted is not None and formatted != current["name"].get("formatted")
        values, asked_site = _values(patched, prefer_formatted=prefer)
        return await _write(conn, scope, before, values, asked_site, actor, base)


async def remove(
    engine: AsyncEngine,
    scope: Scope,
    person_id: str,
    if_match: str | None,
    actor: Principal,
    base: str,
) -> int:
    """Deprovisions and hides the person; the number of badges revoked."""
    async with common.writing(engine) as conn:
        before = await _row(conn, scope, person_id, lock=True)
        current = to_resource(before, base, (await _groups(conn, [person_id]))[person_id])
        common.check_if_match(if_match, current["meta"]["version"])
        revoked = await _revoke_badges(conn, person_id)
        await conn.execute(
            PERSON_GROUP_MEMBERS.delete().where(PERSON_GROUP_MEMBERS.c.person_id == person_id)
        )
        stamp = common.now()
        await conn.execute(
            update(PEOPLE)
            .where(PEOPLE.c.id == person_id)
            .values(active=False, removed_at=stamp, updated_at=stamp)
        )
        await _audit(
            conn, actor, "scim.user_delete", person_id, before.site_id, {"badges_revoked": revoked}
        )
        return revoked
