"""Retention of notifications: bodies and guest addresses are not kept for ever.

A notification older than `notify_retention_days` is deleted with its delivery
rows once none of them is still pending (a pending email is never dropped to
meet the period; it is deleted at the first purge after it settles).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.tables import NOTIFICATION_DELIVERIES as DELIVERIES
from cloud.db.tables import NOTIFICATIONS


async def purge_notifications(engine: AsyncEngine, now: datetime, retention_days: float) -> int:
    """Deletes settled notifications created before now - retention; returns how many."""
    cutoff = now - timedelta(days=retention_days)
    pending = exists().where(
        DELIVERIES.c.notification_id == NOTIFICATIONS.c.id, DELIVERIES.c.status == "pending"
    )
    old = select(NOTIFICATIONS.c.id).where(NOTIFICATIONS.c.created_at < cutoff, ~pending)
    # Read first: nothing to purge must not take SQLite's write lock.
    async with engine.connect() as conn:
        ids = list((await conn.scalars(old.limit(5000))).all())
    if not ids:
        return 0
    async with engine.begin() as conn:
        # Delivery rows first: SQLite does not enforce ON DELETE CASCADE by default.
        # (A settled delivery never becomes pending again, so the ids read stay settled.)
        await conn.execute(delete(DELIVERIES).where(DELIVERIES.c.notification_id.in_(ids)))
        await conn.execute(delete(NOTIFICATIONS).where(NOTIFICATIONS.c.id.in_(ids)))
    return len(ids)
