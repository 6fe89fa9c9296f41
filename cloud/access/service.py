"""Access rights management: doors, groups, grants, holidays, each change versioned.

Every change writes one `access_changes` row in the same transaction: its
`version` (monotonic over the whole deployment) is the version of the rights
after it, and the row keeps who changed what and the state after the change,
so the history of the rights can be read back (`changes`). Callers (the routes)
then mark the snapshots dirty so nodes get the new rights within seconds.

Site scope: `scope` is the set of sites the caller may manage (None: every
site); a door, group or holiday of another site is "not found".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.access.rights import configured_doors
from cloud.access.schemas import (
    ChangePublic,
    DoorCreate,
    DoorPublic,
    GrantCreate,
    GrantPublic,
    GroupCreate,
    GroupPublic,
    HolidayCreate,
    HolidayPublic,
)
from cloud.db.tables import (
    ACCESS_CHANGES,
    ACCESS_DOORS,
    ACCESS_GRANTS,
    ACCESS_GROUPS,
    ACCESS_HOLIDAYS,
    FLOORS,
    NODE_CONFIGS,
    SITES,
)
from cloud.errors import Conflict, NotFound

Scope = frozenset[str] | None


def _visible(scope: Scope, site: str | None) -> bool:
    return scope is None or (site is not None and site in scope)


async def _log(
    conn: AsyncConnection, *, actor: str, action: str, target: str, site: str | None,
    data: dict[str, Any] | None, now: datetime,
) -> int:  # fmt: skip
    result = await conn.execute(
        ACCESS_CHANGES.insert()
        .values(at=now, actor=actor, action=action, target=target, site_id=site, data=data)
        .returning(ACCESS_CHANGES.c.version)
    )
    return int(result.scalar_one())


async def current_version(conn: AsyncConnection) -> int:
    return int(await conn.scalar(select(func.max(ACCESS_CHANGES.c.version))) or 0)


async def _ensure_site(conn: AsyncConnection, scope: Scope, site: str) -> None:
    if (
        not _visible(scope, site)
        or await conn.scalar(select(SITES.c.id).where(SITES.c.id == site)) is None
    ):
        raise NotFound(f"site {site!r} is unknown", title="Site not found")


# --- doors ----------------------------------------------------------------------------------


async def _door_nodes(conn: AsyncConnection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for node, config in await conn.execute(
        select(NODE_CONFIGS.c.node_id, NODE_CONFIGS.c.config).order_by(NODE_CONFIGS.c.node_id)
    ):
        for door in configured_doors(config):
            out.setdefault(door, []).append(node)
    return out


async def list_doors(conn: AsyncConnection, scope: Scope) -> list[DoorPublic]:
    nodes = await _door_nodes(conn)
    rows = await conn.execute(select(ACCESS_DOORS).order_by(ACCESS_DOORS.c.id))
    return [
        DoorPublic.model_validate(
            dict(r._mapping)
            | {"nodes": sorted(set(nodes.get(r.id, [])) | ({r.node_id} if r.node_id else set()))}
        )
        for r in rows
        if _visible(scope, r.site_id)
    ]


async def _door_site(conn: AsyncConnection, door: str) -> str | None:
    site = await conn.scalar(select(ACCESS_DOORS.c.site_id).where(ACCESS_DOORS.c.id == door))
    return None if site is None else str(site)


async def put_door(
    conn: AsyncConnection, scope: Scope, actor: str, door: str, body: DoorCreate, now: datetime
) -> int:
    await _ensure_site(conn, scope, body.site_id)
    existing = await _door_site(conn, door)
    if existing is not None and not _visible(scope, existing):
        raise NotFound(f"door {door!r} is unknown", title="Door not found")
    if (
        body.floor_id is not None
        and await conn.scalar(select(FLOORS.c.id).where(FLOORS.c.id == body.floor_id)) is None
    ):
        raise NotFound(f"floor {body.floor_id!r} is unknown", title="Floor not found")
    values = body.model_dump()
    if existing is None:
        await conn.execute(ACCESS_DOORS.insert().values(id=door, **values))
    else:
        await conn.execute(update(ACCESS_DOORS).where(ACCESS_DOORS.c.id == door).values(**values))
    return await _log(conn, actor=actor, action="door.put", target=door, site=body.site_id,
                      data=body.model_dump(mode="json"), now=now)  # fmt: skip


async def delete_door(
    conn: AsyncConnection, scope: Scope, actor: str, door: str, now: datetime
) -> int:
    site = await _door_site(conn, door)
    if site is None or not _visible(scope, site):
        raise NotFound(f"door {door!r} is unknown", title="Door not found")
    await conn.execute(delete(ACCESS_GRANTS).where(ACCESS_GRANTS.c.door_id == door))
    await conn.execute(delete(ACCESS_DOORS).where(ACCESS_DOORS.c.id == door))
    return await _log(conn, actor=actor, action="door.delete", target=door, site=site,
                      data=None, now=now)  # fmt: skip


# --- groups ---------------------------------------------------------------------------------


async def list_groups(conn: AsyncConnection, scope: Scope) -> list[GroupPublic]:
    rows = await conn.execute(select(ACCESS_GROUPS).order_by(ACCESS_GROUPS.c.id))
    return [
        GroupPublic.model_validate(dict(r._mapping)) for r in rows if _visible(scope, r.site_id)
    ]


async def _group_site(conn: AsyncConnection, group: str) -> str | None:
    site = await conn.scalar(select(ACCESS_GROUPS.c.site_id).where(ACCESS_GROUPS.c.id == group))
    return None if site is None else str(site)


async def put_group(
    conn: AsyncConnection, scope: Scope, actor: str, group: str, body: GroupCreate, now: datetime
) -> int:
    await _ensure_site(conn, scope, body.site_id)
    existing = await _group_site(conn, group)
    if existing is not None and not _visible(scope, existing):
        raise NotFound(f"group {group!r} is unknown", title="Group not found")
    values = body.model_dump()
    if existing is None:
        await conn.execute(ACCESS_GROUPS.insert().values(id=group, **values))
    else:
        await conn.execute(
            update(ACCESS_GROUPS).where(ACCESS_GROUPS.c.id == group).values(**values)
        )
    return await _log(conn, actor=actor, action="group.put", target=group, site=body.site_id,
                      data=body.model_dump(mode="json"), now=now)  # fmt: skip


async def delete_group(
    conn: AsyncConnection, scope: Scope, actor: str, group: str, now: datetime
) -> int:
    site = await _group_site(conn, group)
    if site is None or not _visible(scope, site):
        raise NotFound(f"group {group!r} is unknown", title="Group not found")
    await conn.execute(delete(ACCESS_GRANTS).where(ACCESS_GRANTS.c.group_id == group))
    await conn.execute(delete(ACCESS_GROUPS).where(ACCESS_GROUPS.c.id == group))
    return await _log(conn, actor=actor, action="group.delete", target=group, site=site,
                      data=None, now=now)  # fmt: skip


# --- grants ---------------------------------------------------------------------------------


async def list_grants(conn: AsyncConnection, scope: Scope) -> list[GrantPublic]:
    rows = await conn.execute(
        select(ACCESS_GRANTS, ACCESS_DOORS.c.site_id)
        .join(ACCESS_DOORS, ACCESS_DOORS.c.id == ACCESS_GRANTS.c.door_id)
        .order_by(ACCESS_GRANTS.c.id)
    )
    return [
        GrantPublic.model_validate({k: v for k, v in r._mapping.items() if k != "site_id"})
        for r in rows
        if _visible(scope, r.site_id)
    ]


async def put_grant(
    conn: AsyncConnection, scope: Scope, actor: str, body: GrantCreate, now: datetime
) -> tuple[int, int]:
    """Grants (or re-schedules) a group at a door: (grant id, version)."""
    door_site = await _door_site(conn, body.door_id)
    if door_site is None or not _visible(scope, door_site):
        raise NotFound(f"door {body.door_id!r} is unknown", title="Door not found")
    group_site = await _group_site(conn, body.group_id)
    if group_site is None or not _visible(scope, group_site):
        raise NotFound(f"group {body.group_id!r} is unknown", title="Group not found")
    if group_site != door_site:
        raise Conflict("a group is granted only doors of its own site",
                       title="Group and door in different sites")  # fmt: skip
    values = {"schedule": [w.model_dump() for w in body.schedule],
              "open_on_holidays": body.open_on_holidays}  # fmt: skip
    grant = await conn.scalar(
        select(ACCESS_GRANTS.c.id).where(
            ACCESS_GRANTS.c.group_id == body.group_id, ACCESS_GRANTS.c.door_id == body.door_id
        )
    )
    if grant is None:
        grant = (
            await conn.execute(
                ACCESS_GRANTS.insert()
                .values(group_id=body.group_id, door_id=body.door_id, **values)
                .returning(ACCESS_GRANTS.c.id)
            )
        ).scalar_one()
    else:
        await conn.execute(
            update(ACCESS_GRANTS).where(ACCESS_GRANTS.c.id == grant).values(**values)
        )
    target = f"{body.group_id}@{body.door_id}"
    version = await _log(conn, actor=actor, action="grant.put", target=target,
                         site=door_site, data=body.model_dump(mode="json"), now=now)  # fmt: skip
    return int(grant), version


async def delete_grant(
    conn: AsyncConnection, scope: Scope, actor: str, grant: int, now: datetime
) -> int:
    row = (
        await conn.execute(
            select(ACCESS_GRANTS.c.group_id, ACCESS_GRANTS.c.door_id, ACCESS_DOORS.c.site_id)
            .join(ACCESS_DOORS, ACCESS_DOORS.c.id == ACCESS_GRANTS.c.door_id)
            .where(ACCESS_GRANTS.c.id == grant)
        )
    ).first()
    if row is None or not _visible(scope, row.site_id):
        raise NotFound(f"grant {grant} is unknown", title="Grant not found")
    await conn.execute(delete(ACCESS_GRANTS).where(ACCESS_GRANTS.c.id == grant))
    return await _log(conn, actor=actor, action="grant.delete",
                      target=f"{row.group_id}@{row.door_id}", site=row.site_id,
                      data=None, now=now)  # fmt: skip


# --- holidays -------------------------------------------------------------------------------


async def list_holidays(conn: AsyncConnection, scope: Scope, site: str) -> list[HolidayPublic]:
    await _ensure_site(conn, scope, site)
    rows = await conn.execute(
        select(ACCESS_HOLIDAYS)
        .where(ACCESS_HOLIDAYS.c.site_id == site)
        .order_by(ACCESS_HOLIDAYS.c.day)
    )
    return [HolidayPublic.model_validate(dict(r._mapping)) for r in rows]


async def put_holiday(
    conn: AsyncConnection, scope: Scope, actor: str, body: HolidayCreate, now: datetime
) -> int:
    await _ensure_site(conn, scope, body.site_id)
    key = (ACCESS_HOLIDAYS.c.site_id == body.site_id) & (ACCESS_HOLIDAYS.c.day == body.day)
    if await conn.scalar(select(ACCESS_HOLIDAYS.c.name).where(key)) is None:
        await conn.execute(ACCESS_HOLIDAYS.insert().values(**body.model_dump()))
    else:
        await conn.execute(update(ACCESS_HOLIDAYS).where(key).values(name=body.name))
    return await _log(conn, actor=actor, action="holiday.put", target=body.day.isoformat(),
                      site=body.site_id, data=body.model_dump(mode="json"), now=now)  # fmt: skip


async def delete_holiday(
    conn: AsyncConnection, scope: Scope, actor: str, site: str, day: date, now: datetime
) -> int:
    await _ensure_site(conn, scope, site)
    gone = await conn.execute(
        delete(ACCESS_HOLIDAYS).where(
            ACCESS_HOLIDAYS.c.site_id == site, ACCESS_HOLIDAYS.c.day == day
        )
    )
    if not gone.rowcount:
        raise NotFound(f"no holiday on {day} at {site!r}", title="Holiday not found")
    return await _log(conn, actor=actor, action="holiday.delete", target=day.isoformat(),
                      site=site, data=None, now=now)  # fmt: skip


# --- history --------------------------------------------------------------------------------


async def changes(
    conn: AsyncConnection, scope: Scope, *, after: int = 0, limit: int = 100
) -> Sequence[ChangePublic]:
    stmt = select(ACCESS_CHANGES).where(ACCESS_CHANGES.c.version > after)
    if scope is not None:
        stmt = stmt.where(ACCESS_CHANGES.c.site_id.in_(scope))
    rows = await conn.execute(stmt.order_by(ACCESS_CHANGES.c.version).limit(limit))
    return [ChangePublic.model_validate(dict(r._mapping)) for r in rows]
