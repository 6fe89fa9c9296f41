"""SCIM Groups: people who hold a Ruang role together, at a site (docs/scim.md).

The identity system names a group and lists its members; the Ruang extension
(`role`, `site`) says what membership grants. A group without a role is only a list the
identity system keeps here. `grants_of` answers which roles at which sites a person
holds through their groups, for the sign-in to merge with the token's own claims.
Members are people the client reaches; `admin` and `scim` are never granted by a
group, and a role without a site only by an admin's provisioning.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, exists, func, literal, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.admin import audit
from cloud.db.tables import PEOPLE, PERSON_GROUP_MEMBERS, PERSON_GROUPS, SITES
from cloud.people.access import Scope
from cloud.people.auth import ROLES, Principal
from cloud.scim import common, filters, patch
from cloud.scim.schemas import GROUP, MAX_MEMBERS, RUANG_GROUP, GroupIn

NAMES = {
    n.lower(): n
    for n in (
        "schemas",
        "id",
        "externalId",
        "displayName",
        "members",
        "value",
        "$ref",
        "type",
        "display",
        "meta",
        "role",
        "site",
        RUANG_GROUP,
    )
}
MULTI = frozenset({"members"})
# Roles a group may grant: never admin (an identity system must not mint admins) nor scim.
GRANTABLE = tuple(r for r in ROLES if r not in ("admin", "scim"))


async def _members(conn: AsyncConnection, ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        rows = await conn.execute(
            select(PERSON_GROUP_MEMBERS.c.group_id, PERSON_GROUP_MEMBERS.c.person_id)
            .where(PERSON_GROUP_MEMBERS.c.group_id.in_(ids))
            .order_by(PERSON_GROUP_MEMBERS.c.person_id)
        )
        for group, person in rows:
            out[group].append(person)
    return out


def to_resource(row: Any, base: str, members: list[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [GROUP, RUANG_GROUP],
        "id": row.id,
        "displayName": row.display_name,
        "members": [{"value": m, "$ref": f"{base}/Users/{m}", "type": "User"} for m in members],
    }
    granted = {k: v for k, v in (("role", row.role), ("site", row.site_id)) if v}
    if granted:
        resource[RUANG_GROUP] = granted
    if row.external_id:
        resource["externalId"] = row.external_id
    resource["meta"] = {
        "resourceType": "Group",
        "created": common.stamp(row.created_at),
        "lastModified": common.stamp(row.updated_at),
        "location": f"{base}/Groups/{row.id}",
        "version": common.version_of(resource),
    }
    return resource


def _in_scope(scope: Scope) -> ColumnElement[bool]:
    return true() if scope is None else PERSON_GROUPS.c.site_id.in_(sorted(scope))


async def _row(conn: AsyncConnection, scope: Scope, group_id: str, *, lock: bool = False) -> Any:
    stmt = select(PERSON_GROUPS).where(PERSON_GROUPS.c.id == group_id, _in_scope(scope))
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise common.not_found("Group", group_id)
    return row


async def _resource(conn: AsyncConnection, row: Any, base: str) -> dict[str, Any]:
    return to_resource(row, base, (await _members(conn, [row.id]))[row.id])


async def get(conn: AsyncConnection, scope: Scope, group_id: str, base: str) -> dict[str, Any]:
    return await _resource(conn, await _row(conn, scope, group_id), base)


def _column(attr: str) -> filters.Column | None:
    urn, name = common.split_urn(attr)
    if urn == RUANG_GROUP:
        return {
            "role": filters.Column(PERSON_GROUPS.c.role, case_exact=True),
            "site": filters.Column(PERSON_GROUPS.c.site_id, case_exact=True),
        }.get(name)
    return {
        "id": filters.Column(PERSON_GROUPS.c.id, case_exact=True),
        "displayname": filters.Column(PERSON_GROUPS.c.display_name),
        "externalid": filters.Column(PERSON_GROUPS.c.external_id, case_exact=True),
        "meta.created": filters.Column(PERSON_GROUPS.c.created_at, kind="datetime"),
        "meta.lastmodified": filters.Column(PERSON_GROUPS.c.updated_at, kind="datetime"),
    }.get(name)


def _multi(attr: str, build: Any) -> ColumnElement[bool] | None:
    if common.split_urn(attr)[1] != "members":
        return None
    member = {
        "value": filters.Column(PERSON_GROUP_MEMBERS.c.person_id, case_exact=True),
        "type": filters.Column(literal("User")),
    }
    return exists().where(PERSON_GROUP_MEMBERS.c.group_id == PERSON_GROUPS.c.id, build(member.get))


async def search(
    conn: AsyncConnection,
    scope: Scope,
    base: str,
    *,
    filter_text: str | None,
    start_index: int | None,
    count: int | None,
    members: bool = True,
) -> dict[str, Any]:
    where: list[ColumnElement[bool]] = [_in_scope(scope)]
    if filter_text:
        node = filters.parse(filter_text)
        if isinstance(node, filters.Compare) and node.attr == "members" and node.op != "pr":
            node = filters.Compare("members.value", node.op, node.value)
        where.append(filters.to_sql(node, _column, _multi))
    offset, limit = common.paging(start_index, count)
    total = int(
        await conn.scalar(select(func.count()).select_from(PERSON_GROUPS).where(*where)) or 0
    )
    rows: Sequence[Any] = []
    if limit:
        stmt = select(PERSON_GROUPS).where(*where).order_by(PERSON_GROUPS.c.id)
        rows = (await conn.execute(stmt.offset(offset).limit(limit))).all()
    found = await _members(conn, [r.id for r in rows]) if members else {r.id: [] for r in rows}
    resources = [to_resource(r, base, found[r.id]) for r in rows]
    if not members:
        for resource in resources:
            resource.pop("members")
    return common.list_response(resources, total, offset)


# --- writing -----------------------------------------------------------------------------


def _values(body: dict[str, Any]) -> tuple[dict[str, Any], list[str], str | None]:
    common.require_schema(body, GROUP)
    body = common.canonical_keys(body, NAMES)
    try:
        group = GroupIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise common.invalid_value(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    members = list(dict.fromkeys(m.value for m in group.members or []))
    if len(members) > MAX_MEMBERS:
        raise common.invalid_value(f"at most {MAX_MEMBERS} members per group")
    ext = group.ruang
    role = ext.role if ext else None
    if role is not None and role not in GRANTABLE:
        raise common.invalid_value(f"role must be one of {', '.join(GRANTABLE)}")
    values = {
        "display_name": group.displayName.strip(),
        "external_id": group.externalId,
        "role": role,
    }
    return values, members, ext.site if ext else None


async def _check(
    conn: AsyncConnection, scope: Scope, values: dict[str, Any], members: list[str]
) -> None:
    site, role = values.get("site_id"), values["role"]
    if site is not None and await conn.scalar(select(SITES.c.id).where(SITES.c.id == site)) is None:
        raise common.invalid_value(f"site {site!r} is unknown")
    if role is not None and site is None and scope is not None:
        raise common.invalid_value("a role without a site is for an admin to grant")
    if members:
        stmt = select(PEOPLE.c.id).where(PEOPLE.c.id.in_(members), PEOPLE.c.removed_at.is_(None))
        if scope is not None:
            stmt = stmt.where(PEOPLE.c.site_id.in_(sorted(scope)))
        known = set(await conn.scalars(stmt))
        unknown = [m for m in members if m not in known]
        if unknown:
            raise common.invalid_value(f"members not known here: {', '.join(unknown[:5])}")


async def _set_members(conn: AsyncConnection, group_id: str, members: list[str]) -> tuple[int, int]:
    current = set((await _members(conn, [group_id]))[group_id])
    wanted = set(members)
    gone, new = sorted(current - wanted), sorted(wanted - current)
    if gone:
        await conn.execute(
            PERSON_GROUP_MEMBERS.delete().where(
                PERSON_GROUP_MEMBERS.c.group_id == group_id,
                PERSON_GROUP_MEMBERS.c.person_id.in_(gone),
            )
        )
    if new:
        await conn.execute(
            PERSON_GROUP_MEMBERS.insert(), [{"group_id": group_id, "person_id": p} for p in new]
        )
    return len(new), len(gone)


def _taken(name: str) -> Exception:
    return common.taken(f"displayName {name!r} is taken")


async def _name_free(conn: AsyncConnection, name: str, group_id: str | None) -> None:
    stmt = select(PERSON_GROUPS.c.id).where(
        func.lower(PERSON_GROUPS.c.display_name) == name.lower()
    )
    holder = await conn.scalar(stmt)
    if holder is not None and holder != group_id:
        raise _taken(name)


async def _audit(
    conn: AsyncConnection, actor: Principal, action: str, row: Any, detail: dict[str, Any]
) -> None:
    await audit.record(
        conn, actor=actor, action=action, target=f"group:{row.id}", detail=detail, site=row.site_id
    )


async def create(
    engine: AsyncEngine, scope: Scope, body: dict[str, Any], actor: Principal, base: str
) -> dict[str, Any]:
    values, members, asked = _values(body)
    values["site_id"] = common.default_site(scope, asked)
    try:
        async with common.writing(engine) as conn:
            await _check(conn, scope, values, members)
            await _name_free(conn, values["display_name"], None)
            stamp = common.now()
            group_id = str(uuid.uuid4())
            await conn.execute(
                PERSON_GROUPS.insert().values(
                    id=group_id, created_at=stamp, updated_at=stamp, **values
                )
            )
            added, _ = await _set_members(conn, group_id, members)
            row = await _row(conn, None, group_id)
            await _audit(
                conn, actor, "scim.group_create", row, {"role": row.role, "members_added": added}
            )
            return await _resource(conn, row, base)
    except IntegrityError:
        raise _taken(values["display_name"]) from None


async def _write(
    conn: AsyncConnection,
    scope: Scope,
    before: Any,
    body: dict[str, Any],
    actor: Principal,
    base: str,
) -> dict[str, Any]:
    values, members, asked = _values(body)
    values["site_id"] = before.site_id
    if asked is not None and asked != before.site_id:
        if not common.in_reach(scope, asked):
            raise common.invalid_value(f"site {asked!r} is not one this client provisions")
        values["site_id"] = asked
    await _check(conn, scope, values, members)
    await _name_free(conn, values["display_name"], before.id)
    changed = sorted(k for k, v in values.items() if before._mapping[k] != v)
    await conn.execute(
        update(PERSON_GROUPS)
        .where(PERSON_GROUPS.c.id == before.id)
        .values(**values, updated_at=common.now())
    )
    added, removed = await _set_members(conn, before.id, members)
    row = await _row(conn, None, before.id)
    if changed or added or removed:
        await _audit(
            conn,
            actor,
            "scim.group_update",
            row,
            {
                "fields": changed,
                "role": row.role,
                "members_added": added,
                "members_removed": removed,
            },
        )
    return await _resource(conn, row, base)


async def replace(
    engine: AsyncEngine,
    scope: Scope,
    group_id: str,
    body: dict[str, Any],
    if_match: str | None,
    actor: Principal,
    base: str,
) -> dict[str, Any]:
    try:
        async with common.writing(engine) as conn:
            before = await _row(conn, scope, group_id, lock=True)
            common.check_if_match(
                if_match, (await _resource(conn, before, base))["meta"]["version"]
            )
            return await _write(conn, scope, before, body, actor, base)
    except IntegrityError:
        raise common.taken("displayName is taken") from None


async def modify(
    engine: AsyncEngine,
    scope: Scope,
    group_id: str,
    operations: list[dict[str, Any]],
    if_match: str | None,
    actor: Principal,
    base: str,
) -> dict[str, Any]:
    try:
        async with common.writing(engine) as conn:
            before = await _row(conn, scope, group_id, lock=True)
            current = await _resource(conn, before, base)
            common.check_if_match(if_match, current["meta"]["version"])
            patched = patch.apply(current, operations, NAMES, MULTI)
            return await _write(conn, scope, before, patched, actor, base)
    except IntegrityError:
        raise common.taken("displayName is taken") from None


async def remove(
    engine: AsyncEngine,
    scope: Scope,
    group_id: str,
    if_match: str | None,
    actor: Principal,
    base: str,
) -> None:
    async with common.writing(engine) as conn:
        before = await _row(conn, scope, group_id, lock=True)
        common.check_if_match(if_match, (await _resource(conn, before, base))["meta"]["version"])
        await conn.execute(
            PERSON_GROUP_MEMBERS.delete().where(PERSON_GROUP_MEMBERS.c.group_id == group_id)
        )
        await conn.execute(PERSON_GROUPS.delete().where(PERSON_GROUPS.c.id == group_id))
        await _audit(conn, actor, "scim.group_delete", before, {"role": before.role})


async def grants_of(conn: AsyncConnection, person_id: str) -> list[tuple[str, str | None]]:
    """(role, site) pairs `person_id` holds through their groups; sorted, without repeats."""
    rows = await conn.execute(
        select(PERSON_GROUPS.c.role, PERSON_GROUPS.c.site_id)
        .join(PERSON_GROUP_MEMBERS, PERSON_GROUP_MEMBERS.c.group_id == PERSON_GROUPS.c.id)
        .join(PEOPLE, PEOPLE.c.id == PERSON_GROUP_MEMBERS.c.person_id)
        .where(
            PERSON_GROUP_MEMBERS.c.person_id == person_id,
            PERSON_GROUPS.c.role.is_not(None),
            PEOPLE.c.active,
        )
        .distinct()
    )
    return sorted(((r, s) for r, s in rows), key=lambda p: (p[0], p[1] or ""))
