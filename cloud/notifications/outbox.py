"""Writing notifications into the outbox, inside the caller's transaction.

`notify(conn, person_id=..., kind=..., data=...)` adds the person's in-app entry
and a pending email delivery; both exist only if the caller's transaction
commits, so a notification is never sent for a change that rolled back. The
dispatcher (cloud/notifications/dispatcher.py) sends committed ones at least once.

`dedup_key` names the business event ("booking_confirmed:42"): a second write
with the same key adds nothing, so a job that runs twice, or a retried request,
does not notify twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cloud.db.bulk import BulkInsert
from cloud.db.tables import NOTIFICATION_DELIVERIES as DELIVERIES
from cloud.db.tables import NOTIFICATIONS
from cloud.notifications.templates import DEFAULT_LANGUAGE, KINDS, LANGUAGES, missing_fields

Attachment = tuple[str, str, str]
"""(filename, content type, text content) of a file sent with the email, e.g. an ICS."""


class NotificationRefused(ValueError):
    """A programming error of the caller: unknown kind, missing fields or no recipient."""


async def _connection(conn_or_session: AsyncConnection | AsyncSession) -> AsyncConnection:
    if isinstance(conn_or_session, AsyncSession):
        return await conn_or_session.connection()
    return conn_or_session


def _check(kind: str, data: dict[str, Any]) -> None:
    if kind not in KINDS:
        raise NotificationRefused(f"unknown notification kind {kind!r}")
    missing = missing_fields(kind, data)
    if missing:
        raise NotificationRefused(f"{kind} needs {', '.join(missing)}")


# One SQL text however many rows (cloud/db/bulk.py); a de-dup key seen before adds
# nothing, and only the rows added come back.
_INSERT = BulkInsert(
    NOTIFICATIONS,
    ("person_id", "address", "language", "kind", "data", "attachments", "dedup_key", "created_at"),
    returning=(NOTIFICATIONS.c.id, NOTIFICATIONS.c.created_at),
    skip_conflicts_on=("dedup_key",),
)
_INSERT_DELIVERY = BulkInsert(
    DELIVERIES,
    ("notification_id", "channel", "status", "attempts", "next_attempt_at", "created_at"),
)


async def _insert(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Adds the notifications (a de-dup key seen before adds nothing) and one pending
    email delivery for each one added: two statements however many rows."""
    added = await _INSERT.execute(conn, rows)
    await _INSERT_DELIVERY.execute(
        conn,
        [
            {
                "notification_id": notification_id,
                "channel": "email",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": created_at,
                "created_at": created_at,
            }
            for notification_id, created_at in added
        ],
    )


@dataclass(frozen=True)
class Notice:
    """One notification for a person of the roster (see `notify`)."""

    person_id: str
    kind: str
    data: dict[str, Any]
    dedup_key: str | None = None
    attachments: Sequence[Attachment] = ()


async def notify(
    conn_or_session: AsyncConnection | AsyncSession,
    *,
    person_id: str,
    kind: str,
    data: dict[str, Any],
    dedup_key: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> None:
    """Tells a person about something: in-app always, by email as their preferences say."""
    await notify_many(conn_or_session, [Notice(person_id, kind, data, dedup_key, attachments)])


async def notify_many(
    conn_or_session: AsyncConnection | AsyncSession, notices: Sequence[Notice]
) -> None:
    """`notify` for several notices in two statements (a batch of bookings' confirmations)."""
    for notice in notices:
        _check(notice.kind, notice.data)
    conn = await _connection(conn_or_session)
    now = datetime.now(UTC)
    await _insert(
        conn,
        [
            {
                "person_id": n.person_id,
                "address": None,
                "language": None,
                "kind": n.kind,
                "data": n.data,
                "attachments": [_attachment(a) for a in n.attachments],
                "dedup_key": n.dedup_key,
                "created_at": now,
            }
            for n in notices
        ],
    )


async def notify_address(
    conn_or_session: AsyncConnection | AsyncSession,
    *,
    address: str,
    kind: str,
    data: dict[str, Any],
    language: str = DEFAULT_LANGUAGE,
    dedup_key: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> None:
    """Tells someone who is not a person of the roster (a guest) at an email address.

    Only email is sent; an address without "@" (a phone number) is kept in the
    delivery log as skipped, since no SMS channel exists yet.
    """
    _check(kind, data)
    if not address.strip():
        raise NotificationRefused("an address is needed")
    if language not in LANGUAGES:
        raise NotificationRefused(f"language must be one of {LANGUAGES}")
    conn = await _connection(conn_or_session)
    await _insert(
        conn,
        [
            {
                "person_id": None,
                "address": address.strip()[:254],
                "language": language,
                "kind": kind,
                "data": data,
                "attachments": [_attachment(a) for a in attachments],
                "dedup_key": dedup_key,
                "created_at": datetime.now(UTC),
            }
        ],
    )


def _attachment(item: Attachment) -> dict[str, str]:
    filename, content_type, text = item
    if "/" not in content_type:
        raise NotificationRefused(f"content type {content_type!r} is not type/subtype")
    return {"filename": filename, "content_type": content_type, "text": text}
