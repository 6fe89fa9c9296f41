"""Read-side queries behind the HTTP API (desks, nodes), returning API schemas.

Desk rows go out through `desks_for`: only the desks a caller may see, and the raw
badge UID of an occupant only to whoever manages the desk's site.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.buildings.schemas import DeskPublic
from cloud.db.tables import DESKS, NODES
from cloud.fleet.schemas import NodePublic
from cloud.people import access
from cloud.people.auth import Principal

_DESK_COLUMNS = (
    DESKS.c.id,
    DESKS.c.node_id.label("node"),
    DESKS.c.state,
    DESKS.c.occupant_badge,
    DESKS.c.checked_in_at,
    DESKS.c.present,
    DESKS.c.presence_changed_at,
    DESKS.c.last_change_at,
    DESKS.c.unit,
    DESKS.c.unit_online,
    DESKS.c.unit_firmware,
)


async def list_desks(conn: AsyncConnection) -> list[DeskPublic]:
    rows = await conn.execute(select(*_DESK_COLUMNS).order_by(DESKS.c.id))
    return [DeskPublic.model_validate(row._mapping) for row in rows]


async def get_desk(conn: AsyncConnection, desk_id: str) -> DeskPublic | None:
    row = (await conn.execute(select(*_DESK_COLUMNS).where(DESKS.c.id == desk_id))).first()
    return None if row is None else DeskPublic.model_validate(row._mapping)


async def list_nodes(conn: AsyncConnection) -> list[NodePublic]:
    desk_count = (
        select(DESKS.c.node_id, func.count().label("desks")).group_by(DESKS.c.node_id).subquery()
    )
    stmt = (
        select(NODES, func.coalesce(desk_count.c.desks, 0).label("desks"))
        .outerjoin(desk_count, desk_count.c.node_id == NODES.c.id)
        .order_by(NODES.c.id)
    )
    return [NodePublic.model_validate(row._mapping) for row in await conn.execute(stmt)]


def without_badges(
    user: Principal, desks: list[DeskPublic], sites: dict[str, str]
) -> list[DeskPublic]:
    """Desk rows with the occupant's raw badge UID blanked unless the caller manages the
    desk's site: technicians need a desk's state, not who sits there."""
    return [
        d
        if access.manages(user, sites.get(d.id))
        else d.model_copy(update={"occupant_badge": None})
        for d in desks
    ]


async def desks_for(
    conn: AsyncConnection, user: Principal, desks: list[DeskPublic]
) -> list[DeskPublic]:
    """Desk rows the caller may see, badge UIDs only where they manage the site."""
    visible = await access.only_desks(conn, user, desks, lambda d: d.id)
    return without_badges(user, visible, await access.desk_sites(conn, [d.id for d in visible]))
