"""Door access routes (docs/access-control.md): doors, groups, grants, holidays, the history of
changes, the access log and the nodes' audit chains. For the security role (and admins) of the
door's / group's site; every change bumps the rights' version and republishes the snapshots."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from cloud.access import chain, log, rights, service
from cloud.access.schemas import (
    AccessLogPage,
    ChainPublic,
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
from cloud.admin import audit
from cloud.admin.targets import door_site, grant_site, group_site
from cloud.api.snapshots import PublisherDep
from cloud.api_types import AwareDateTime, Problem
from cloud.deps import DbDep, EngineDep
from cloud.errors import NotFound
from cloud.people import access
from cloud.people.auth import CurrentUser, Principal
from cloud.privacy.access_audit import record_read
from ruang.contract import ID_PATTERN

router = APIRouter(tags=["access control"])

SECURITY_ROLES = ("security",)
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": Problem}}
AccessId = Annotated[str, Path(pattern=ID_PATTERN)]


def _scope(user: Principal) -> frozenset[str] | None:
    return access.site_scope(user, SECURITY_ROLES)


def _now() -> datetime:
    return datetime.now(UTC)


async def _changed(conn: DbDep, snapshots: PublisherDep, version: int) -> dict[str, int]:
    await conn.commit()
    snapshots.mark_dirty()  # rights reach every node concerned within seconds
    return {"version": version}


@router.get("/access/doors", response_model=list[DoorPublic])
async def list_doors(conn: DbDep, user: CurrentUser) -> list[DoorPublic]:
    return await service.list_doors(conn, _scope(user))


@router.put("/access/doors/{door}", responses=_NOT_FOUND)
async def put_door(
    door: AccessId, body: DoorCreate, conn: DbDep, user: CurrentUser, snapshots: PublisherDep
) -> dict[str, int]:
    version = await service.put_door(conn, _scope(user), user.subject, door, body, _now())
    detail = {**body.model_dump(mode="json"), "version": version}
    await audit.record(
        conn, actor=user, action="door.put", target=f"door:{door}", detail=detail, site=body.site_id
    )
    return await _changed(conn, snapshots, version)


@router.delete("/access/doors/{door}", responses=_NOT_FOUND)
async def delete_door(
    door: AccessId, conn: DbDep, user: CurrentUser, snapshots: PublisherDep
) -> dict[str, int]:
    site = await door_site(conn, door)
    version = await service.delete_door(conn, _scope(user), user.subject, door, _now())
    await audit.record(
        conn, actor=user, action="door.delete", target=f"door:{door}",
        detail={"version": version}, site=site,
    )  # fmt: skip
    return await _changed(conn, snapshots, version)


@router.get("/access/groups", response_model=list[GroupPublic])
async def list_groups(conn: DbDep, user: CurrentUser) -> list[GroupPublic]:
    return await service.list_groups(conn, _scope(user))


@router.put("/access/groups/{group}", responses=_NOT_FOUND)
async def put_group(
    group: AccessId, body: GroupCreate, conn: DbDep, user: CurrentUser, snapshots: PublisherDep
) -> dict[str, int]:
    version = await service.put_group(conn, _scope(user), user.subject, group, body, _now())
    await audit.record(
        conn, actor=user, action="access_group.put", target=f"access_group:{group}",
        detail={**body.model_dump(mode="json"), "version": version}, site=body.site_id,
    )  # fmt: skip
    return await _changed(conn, snapshots, version)


@router.delete("/access/groups/{group}", responses=_NOT_FOUND)
async def delete_group(
    group: AccessId, conn: DbDep, user: CurrentUser, snapshots: PublisherDep
) -> dict[str, int]:
    site = await group_site(conn, group)
    version = await service.delete_group(conn, _scope(user), user.subject, group, _now())
    await audit.record(
        conn, actor=user, action="access_group.delete", target=f"access_group:{group}",
        detail={"version": version}, site=site,
    )  # fmt: skip
    return await _changed(conn, snapshots, version)


@router.get("/access/grants", response_model=list[GrantPublic])
async def list_grants(conn: DbDep, user: CurrentUser) -> list[GrantPublic]:
    return await service.list_grants(conn, _scope(user))


@router.put("/access/grants", responses={**_NOT_FOUND, 409: {"model": Problem}})
async def put_grant(
    body: GrantCreate, conn: DbDep, user: CurrentUser, snapshots: PublisherDep
) -> dict[str, int]:
    """Grants a group a door with a weekly schedule (replacing the schedule if granted)."""
    grant, version = await service.put_grant(conn, _scope(user), user.subject, body, _now())
    await audit.record(
        conn, actor=user, action="access_grant.put", target=f"access_grant:{grant}",
        detail={**body.model_dump(mode="json"), "version": version},
        site=await door_site(conn, body.door_id),
    )  # fmt: skip
    return await _changed(conn, snapshots, version) | {"id": grant}


@router.delete("/access/grants/{grant}", responses=_NOT_FOUND)
async def delete_grant(
    grant: Annotated[int, Path(ge=1, le=2**63 - 1)],
    conn: DbDep,
    user: CurrentUser,
    snapshots: PublisherDep,
) -> dict[str, int]:
    site = await grant_site(conn, grant)
    version = await service.delete_grant(conn, _scope(user), user.subject, grant, _now())
    await audit.record(
        conn, actor=user, action="access_grant.delete", target=f"access_grant:{grant}",
        detail={"version": version}, site=site,
    )  # fmt: skip
    return await _changed(conn, snapshots, version)


@router.get("/access/holidays", response_model=list[HolidayPublic], responses=_NOT_FOUND)
async def list_holidays(
    conn: DbDep, user: CurrentUser, site_id: Annotated[str, Query(max_length=64)]
) -> list[HolidayPublic]:
    return await service.list_holidays(conn, _scope(user), site_id)


@router.put("/access/holidays", responses=_NOT_FOUND)
async def put_holiday(
    body: HolidayCreate, conn: DbDep, user: CurrentUser, snapshots: PublisherDep
) -> dict[str, int]:
    version = await service.put_holiday(conn, _scope(user), user.subject, body, _now())
    await audit.record(
        conn, actor=user, action="holiday.put", target=f"holiday:{body.site_id}:{body.day}",
        detail={**body.model_dump(mode="json"), "version": version}, site=body.site_id,
    )  # fmt: skip
    return await _changed(conn, snapshots, version)


@router.delete("/access/holidays/{site_id}/{day}", responses=_NOT_FOUND)
async def delete_holiday(
    site_id: Annotated[str, Path(max_length=64)],
    day: date,
    conn: DbDep,
    user: CurrentUser,
    snapshots: PublisherDep,
) -> dict[str, int]:
    version = await service.delete_holiday(conn, _scope(user), user.subject, site_id, day, _now())
    await audit.record(
        conn, actor=user, action="holiday.delete", target=f"holiday:{site_id}:{day}",
        detail={"version": version}, site=site_id,
    )  # fmt: skip
    return await _changed(conn, snapshots, version)


@router.get("/access/changes", response_model=list[ChangePublic])
async def list_changes(
    conn: DbDep,
    user: CurrentUser,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ChangePublic]:
    """The history of the rights, oldest first: each change with the version it made."""
    return list(await service.changes(conn, _scope(user), after=after, limit=limit))


@router.get("/access-log", response_model=AccessLogPage)
async def access_log(
    conn: DbDep,
    engine: EngineDep,
    user: CurrentUser,
    door: Annotated[str | None, Query(max_length=64)] = None,
    person: Annotated[str | None, Query(max_length=64)] = None,
    # Not `node`: that name is scoped by the node's desks (door-only nodes have none).
    edge_node: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[AwareDateTime | None, Query(description="from (RFC 3339 with offset)")] = None,
    end: Annotated[AwareDateTime | None, Query(description="until, exclusive")] = None,
    granted: bool | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=log.MAX_PAGE)] = 100,
) -> AccessLogPage:
    """Door decisions, newest first; `next_before_id` pages on to older ones."""
    found = await log.search(
        conn, _scope(user), door=door, person=person, node=edge_node, start=start, end=end,
        granted=granted, before_id=before_id, limit=limit,
    )  # fmt: skip
    # Who opened which door is other people's data: every page read is audited.
    await record_read(engine, user, "access_log", subject=person, records=len(found.items),
                      roles=("admin", "security"))  # fmt: skip
    return found


@router.get("/access-log/chains", response_model=list[ChainPublic])
async def list_chains(conn: DbDep, user: CurrentUser) -> list[ChainPublic]:
    """Each node's verified audit chain and its break or gap, if any (admins and security)."""
    found = await log.chains(conn)
    scope = _scope(user)
    if scope is None:
        return found
    sites = await _node_sites(conn, [c.node for c in found])
    return [c for c in found if access.in_scope(scope, sites.get(c.node, set()))]


async def _node_sites(conn: DbDep, nodes: list[str]) -> dict[str, set[str]]:
    """A node's sites: those of its desks and rooms, and those of the managed doors it controls."""
    sites = await access.node_sites(conn, nodes)
    for node, door_sites in (await rights.door_node_sites(conn)).items():
        sites.setdefault(node, set()).update(door_sites)
    return sites


@router.post(
    "/access-log/chains/{chain_node}/clear", status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND,
)  # fmt: skip
async def clear_chain(chain_node: AccessId, conn: DbDep, user: CurrentUser) -> None:
    """The break or gap was looked into: re-anchor the chain and clear the fleet alarm."""
    node = chain_node
    if not user.is_admin:
        sites = (await _node_sites(conn, [node])).get(node, set())
        if not access.in_scope(_scope(user), sites):
            raise NotFound(f"node {node!r} is unknown", title="Node not found")
    if not await chain.clear(conn, node, _now()):
        raise NotFound(f"node {node!r} has no audit chain", title="Node not found")
    placed = sorted((await _node_sites(conn, [node])).get(node, set()))
    await audit.record(
        conn, actor=user, action="access_chain.clear", target=f"node:{node}", detail={},
        site=placed[0] if placed else None,
    )  # fmt: skip
    await conn.commit()
