"""A person's in-app notifications (rendered in their language) and the admins' delivery log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import NOTIFICATION_DELIVERIES as DELIVERIES
from cloud.db.tables import NOTIFICATIONS
from cloud.errors import NotFound
from cloud.notifications.preferences import preferences_of
from cloud.notifications.schemas import DeliveryPublic, NotificationPublic
from cloud.notifications.templates import KINDS, render

_MINE = NOTIFICATIONS.c.person_id


async def unread_count(conn: AsyncConnection, person_id: str) -> int:
    count = await conn.scalar(
        select(func.count())
        .select_from(NOTIFICATIONS)
        .where(_MINE == person_id, NOTIFICATIONS.c.read_at.is_(None))
    )
    return int(count or 0)


async def list_mine(
    conn: AsyncConnection,
    person_id: str,
    *,
    unread_only: bool,
    limit: int,
    language: str | None = None,
) -> list[NotificationPublic]:
    language = language or (await preferences_of(conn, person_id)).language
    query = select(NOTIFICATIONS).where(_MINE == person_id)
    if unread_only:
        query = query.where(NOTIFICATIONS.c.read_at.is_(None))
    rows = await conn.execute(
        query.order_by(NOTIFICATIONS.c.created_at.desc(), NOTIFICATIONS.c.id.desc()).limit(limit)
    )
    items = []
    for row in rows:
        if row.kind not in KINDS:
            continue  # a kind retired since: nothing to render it with
        rendered = render(row.kind, row.data, language)
        items.append(
            NotificationPublic(
                id=row.id,
                kind=row.kind,
                title=rendered.subject,
                body=rendered.text.split("\n\n-- \n", 1)[0],
                created_at=row.created_at,
                read_at=row.read_at,
            )
        )
    return items


async def mark_read(conn: AsyncConnection, person_id: str, notification_id: int) -> None:
    """Marks one of the person's notifications read; 404 for anyone else's."""
    exists = await conn.scalar(
        select(NOTIFICATIONS.c.id).where(NOTIFICATIONS.c.id == notification_id, _MINE == person_id)
    )
    if exists is None:
        raise NotFound(f"no notification {notification_id}")
    await conn.execute(
        update(NOTIFICATIONS)
        .where(NOTIFICATIONS.c.id == notification_id, NOTIFICATIONS.c.read_at.is_(None))
        .values(read_at=datetime.now(UTC))
    )


async def mark_all_read(conn: AsyncConnection, person_id: str) -> int:
    result = await conn.execute(
        update(NOTIFICATIONS)
        .where(_MINE == person_id, NOTIFICATIONS.c.read_at.is_(None))
        .values(read_at=datetime.now(UTC))
    )
    return int(result.rowcount or 0)


def mask_address(address: str | None) -> str | None:
    """`a***@example.go.id`: enough to tell deliveries apart, not to harvest addresses."""
    if address is None:
        return None
    local, at, domain = address.partition("@")
    if not at:
        return address[:2] + "***"
    return f"{local[:1]}***@{domain}"


async def deliveries(
    conn: AsyncConnection, *, status: str | None, limit: int
) -> list[DeliveryPublic]:
    query = select(
        DELIVERIES,
        NOTIFICATIONS.c.kind,
        NOTIFICATIONS.c.person_id,
        NOTIFICATIONS.c.address,
    ).join(NOTIFICATIONS, NOTIFICATIONS.c.id == DELIVERIES.c.notification_id)
    if status is not None:
        query = query.where(DELIVERIES.c.status == status)
    rows = await conn.execute(query.order_by(DELIVERIES.c.id.desc()).limit(limit))
    return [
        DeliveryPublic(
            id=r.id,
            notification_id=r.notification_id,
            kind=r.kind,
            person_id=r.person_id,
            address=mask_address(r.address),
            channel=r.channel,
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            created_at=r.created_at,
            next_attempt_at=r.next_attempt_at,
            delivered_at=r.delivered_at,
        )
        for r in rows
    ]
