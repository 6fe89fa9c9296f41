"""Recording integration events inside the transaction that makes the change.

Every module that changes something integrations care about calls
`record_event(conn, kind, data)` on the connection of its own transaction; the
webhook dispatcher (cloud/integrations/webhooks.py) delivers committed events (kinds in `KINDS`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.models import IntegrationEvent

EventKind = Literal[
    "booking.created",
    "booking.cancelled",
    "booking.extended",
    "booking.released",
    "booking.checked_in",
    "booking.checked_out",
]
KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]
# Built once; the values are parameters (SQLAlchemy's statement cache then hits at once).
_INSERT_EVENT = insert(IntegrationEvent)


async def record_event(conn: AsyncConnection, kind: EventKind, data: dict[str, Any]) -> None:
    """Adds an event to the outbox; it exists only if the surrounding transaction commits."""
    if kind not in KINDS:
        raise ValueError(f"unknown integration event kind {kind!r}")
    await conn.execute(_INSERT_EVENT, {"kind": kind, "data": data, "created_at": datetime.now(UTC)})


async def record_events(
    conn: AsyncConnection, kind: EventKind, datas: list[dict[str, Any]]
) -> None:
    """`record_event` for many changes of one transaction, in one statement."""
    if kind not in KINDS:
        raise ValueError(f"unknown integration event kind {kind!r}")
    now = datetime.now(UTC)
    await conn.execute(_INSERT_EVENT, [{"kind": kind, "data": d, "created_at": now} for d in datas])
