"""The site of an access-control target, so its audit entry reaches that site's security role."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import ACCESS_DOORS, ACCESS_GRANTS, ACCESS_GROUPS


async def door_site(conn: AsyncConnection, door: str) -> str | None:
    site: str | None = await conn.scalar(
        select(ACCESS_DOORS.c.site_id).where(ACCESS_DOORS.c.id == door)
    )
    return site


async def group_site(conn: AsyncConnection, group: str) -> str | None:
    site: str | None = await conn.scalar(
        select(ACCESS_GROUPS.c.site_id).where(ACCESS_GROUPS.c.id == group)
    )
    return site


async def grant_site(conn: AsyncConnection, grant: int) -> str | None:
    site: str | None = await conn.scalar(
        select(ACCESS_DOORS.c.site_id)
        .join(ACCESS_GRANTS, ACCESS_GRANTS.c.door_id == ACCESS_DOORS.c.id)
        .where(ACCESS_GRANTS.c.id == grant)
    )
    return site
