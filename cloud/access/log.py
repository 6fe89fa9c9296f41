"""The access log, searchable by door, person and time, newest first, page by page.

For the security role of the door's site (admins: every door, including doors the
cloud does not manage). Pages are keyed by id (`before_id`), stable while new
decisions arrive. Badge refs are not returned: the person id says who, and the
raw badge is personal data no search needs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.access.schemas import AccessLogEntryPublic, AccessLogPage, ChainPublic
from cloud.db.tables import ACCESS_CHAINS, ACCESS_DOORS, ACCESS_LOG

MAX_PAGE = 500


async def search(
    conn: AsyncConnection,
    scope: frozenset[str] | None,
    *,
    door: str | None = None,
    person: str | None = None,
    node: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    granted: bool | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> AccessLogPage:
    stmt = select(ACCESS_LOG)
    if scope is not None:
        stmt = stmt.where(
            ACCESS_LOG.c.door.in_(
                select(ACCESS_DOORS.c.id).where(ACCESS_DOORS.c.site_id.in_(scope))
            )
        )
    if door is not None:
        stmt = stmt.where(ACCESS_LOG.c.door == door)
    if person is not None:
        stmt = stmt.where(ACCESS_LOG.c.person_id == person)
    if node is not None:
        stmt = stmt.where(ACCESS_LOG.c.node == node)
    if start is not None:
        stmt = stmt.where(ACCESS_LOG.c.ts >= start)
    if end is not None:
        stmt = stmt.where(ACCESS_LOG.c.ts < end)
    if granted is not None:
        stmt = stmt.where(ACCESS_LOG.c.granted.is_(granted))
    if before_id is not None:
        stmt = stmt.where(ACCESS_LOG.c.id < before_id)
    limit = max(1, min(limit, MAX_PAGE))
    rows = (await conn.execute(stmt.order_by(ACCESS_LOG.c.id.desc()).limit(limit + 1))).all()
    items = [AccessLogEntryPublic.model_validate(dict(r._mapping)) for r in rows[:limit]]
    return AccessLogPage(items=items, next_before_id=items[-1].id if len(rows) > limit else None)


async def chains(conn: AsyncConnection, node: str | None = None) -> list[ChainPublic]:
    stmt = select(ACCESS_CHAINS).order_by(ACCESS_CHAINS.c.node)
    if node is not None:
        stmt = stmt.where(ACCESS_CHAINS.c.node == node)
    return [ChainPublic.model_validate(dict(r._mapping)) for r in await conn.execute(stmt)]
