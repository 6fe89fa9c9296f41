"""Recording integration events inside the transaction that makes the change.

Every module that changes something integrations care about calls
`record_event(conn, kind, data)` on the connection of its own transaction; the
webhook dispatcher (cloud/integrations/webhooks.py) delivers committed events (kinds in `KINDS`).
The data is reduced to its kind's model (cloud/integrations/payloads.py) before it is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.bulk import BulkInsert
from cloud.db.models import IntegrationEvent
from cloud.integrations.payloads import MODELS, clean

EventKind = Literal[
    "booking.created",
    "booking.cancelled",
    "booking.extended",
    "booking.released",
    "booking.checked_in",
    "booking.checked_out",
    "room_booking.created",
    "room_booking.cancelled",
    "room_booking.extended",
    "room_booking.checked_in",
    "room_booking.ended",
    "room_booking.released",
    "access.decision",
    "visitor.checked_in",
    "visitor.checked_out",
    "node.online",
    "node.offline",
    "transport.seat_reserved",
    "transport.seat_cancelled",
    "transport.seat_promoted",
    "transport.seat_no_show",
    "transport.boarding",
    "transport.trip_cancelled",
    "transport.car_requested",
    "transport.car_approved",
    "transport.car_rejected",
    "transport.car_cancelled",
    "transport.car_picked_up",
    "transport.car_returned",
]
KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]
if set(KINDS) != set(MODELS):
    raise RuntimeError("every integration event kind needs its payload model")
# Built once; the values are parameters (SQLAlchemy's statement cache then hits at once).
_INSERT_EVENT = insert(IntegrationEvent)
# A batch's events: one SQL text however many (cloud/db/bulk.py).
_INSERT_EVENTS = BulkInsert(cast(Table, IntegrationEvent.__table__), ("kind", "data", "created_at"))


async def record_event(conn: AsyncConnection, kind: EventKind, data: dict[str, Any]) -> None:
    """Adds an event to the outbox; it exists only if the surrounding transaction commits."""
    if kind not in KINDS:
        raise ValueError(f"unknown integration event kind {kind!r}")
    row = {"kind": kind, "data": clean(kind, data), "created_at": datetime.now(UTC)}
    await conn.execute(_INSERT_EVENT, row)


async def record_events(
    conn: AsyncConnection, kind: EventKind, datas: list[dict[str, Any]]
) -> None:
    """`record_event` for many changes of one transaction, in one statement."""
    if kind not in KINDS:
        raise ValueError(f"unknown integration event kind {kind!r}")
    now = datetime.now(UTC)
    await _INSERT_EVENTS.execute(
        conn, [{"kind": kind, "data": clean(kind, d), "created_at": now} for d in datas]
    )
