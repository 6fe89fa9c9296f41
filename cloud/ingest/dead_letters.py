"""Dead letters: messages that validated but could not be applied, parked for an admin.

Ingestion (cloud/ingest/isolation.py) parks a message here when it fails its SQL write on
its own while the rest of its batch commits (a "poison" message), or when its
edge timestamp lies outside the ingestion window (a node with a wrong clock).
Parking acknowledges it, so one bad message can no longer hold up everything
behind it, and keeps the raw MQTT topic and payload so that it can be replayed
once the cause is fixed. The fleet view shows both as alarms of the node.

This module is the SQL side: park, mark a node's clock as skewed, the write
probe that tells "the database is down" from "this message is poison", and the
admin queries (list, get, delete, replay bookkeeping).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, false, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import DEAD_LETTERS, NODES
from cloud.db.timestamps import utc

REASON_MAX = 512
TOPIC_MAX = 256
PAGE_MAX = 500


@dataclass(frozen=True, slots=True)
class Parked:
    """One message to park: what it is, where it came from, and why."""

    message_id: str
    node: str | None
    topic: str
    payload: bytes
    reason: str
    received_at: float


def _insert(conn: AsyncConnection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


async def park(conn: AsyncConnection, letters: Sequence[Parked]) -> None:
    """Stores each letter; a message already parked counts one more attempt instead."""
    insert = _insert(conn)
    for letter in letters:
        at = utc(letter.received_at)
        reason = letter.reason[:REASON_MAX]
        stmt = insert(DEAD_LETTERS).values(
            message_id=letter.message_id,
            node=letter.node,
            topic=letter.topic[:TOPIC_MAX],
            payload=bytes(letter.payload),
            reason=reason,
            attempts=1,
            first_seen=at,
            last_seen=at,
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[DEAD_LETTERS.c.message_id],
                set_={"attempts": DEAD_LETTERS.c.attempts + 1, "last_seen": at, "reason": reason},
            )
        )


async def mark_clock_skew(
    conn: AsyncConnection, skews: dict[str, tuple[float | None, float]]
) -> None:
    """Records, per node, that a message was refused for its clock: {node: (offset, received)}.

    The node still counts as heard from (a wrong clock is an alarm, not an outage),
    so `last_seen` moves and a node the sweeper had timed out comes back online,
    unless its latest state message was a death.
    """
    if not skews:
        return
    insert = _insert(conn)
    died_last = and_(
        NODES.c.last_death_at.is_not(None),
        or_(NODES.c.last_birth_at.is_(None), NODES.c.last_death_at >= NODES.c.last_birth_at),
    )
    ins = insert(NODES)
    stmt = ins.on_conflict_do_update(
        index_elements=[NODES.c.id],
        set_={
            "last_seen": ins.excluded.last_seen,
            "clock_skew_at": ins.excluded.clock_skew_at,
            "clock_offset_s": func.coalesce(ins.excluded.clock_offset_s, NODES.c.clock_offset_s),
            "online": case((died_last, NODES.c.online), else_=true()),
        },
    )
    await conn.execute(
        stmt,
        [
            {
                "id": node,
                "online": True,
                "last_seen": utc(received),
                "clock_skew_at": utc(received),
                "clock_offset_s": offset,
            }
            for node, (offset, received) in skews.items()
        ],
    )


async def write_probe(conn: AsyncConnection) -> None:
    """A write that changes nothing: raises when the database cannot take writes now.

    A read would succeed while another writer holds SQLite's lock, and every
    message would then look like poison; an UPDATE needs the write lock.
    """
    await conn.execute(update(DEAD_LETTERS).where(false()).values(attempts=DEAD_LETTERS.c.attempts))


# --- admin -------------------------------------------------------------------------------------

_SUMMARY = (
    DEAD_LETTERS.c.id,
    DEAD_LETTERS.c.message_id,
    DEAD_LETTERS.c.node,
    DEAD_LETTERS.c.topic,
    DEAD_LETTERS.c.reason,
    DEAD_LETTERS.c.attempts,
    DEAD_LETTERS.c.first_seen,
    DEAD_LETTERS.c.last_seen,
)


async def list_letters(
    conn: AsyncConnection, *, node: str | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, one page of them newest first, without payloads)."""
    where = [] if node is None else [DEAD_LETTERS.c.node == node]
    total = await conn.scalar(select(func.count()).select_from(DEAD_LETTERS).where(*where))
    rows = await conn.execute(
        select(*_SUMMARY)
        .where(*where)
        .order_by(DEAD_LETTERS.c.last_seen.desc(), DEAD_LETTERS.c.id.desc())
        .limit(min(limit, PAGE_MAX))
        .offset(offset)
    )
    return int(total or 0), [dict(r) for r in rows.mappings()]


async def get_letter(conn: AsyncConnection, letter_id: int) -> dict[str, Any] | None:
    row = (
        (await conn.execute(select(DEAD_LETTERS).where(DEAD_LETTERS.c.id == letter_id)))
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


async def delete_letter(conn: AsyncConnection, letter_id: int) -> bool:
    result = await conn.execute(delete(DEAD_LETTERS).where(DEAD_LETTERS.c.id == letter_id))
    return bool(result.rowcount)


async def replay_failed(conn: AsyncConnection, letter_id: int, reason: str, now: datetime) -> None:
    await conn.execute(
        update(DEAD_LETTERS)
        .where(DEAD_LETTERS.c.id == letter_id)
        .values(attempts=DEAD_LETTERS.c.attempts + 1, reason=reason[:REASON_MAX], last_seen=now)
    )


async def counts_by_node(
    conn: AsyncConnection, nodes: Iterable[str] | None = None
) -> dict[str, int]:
    stmt = (
        select(DEAD_LETTERS.c.node, func.count())
        .where(DEAD_LETTERS.c.node.is_not(None))
        .group_by(DEAD_LETTERS.c.node)
    )
    if nodes is not None:
        stmt = stmt.where(DEAD_LETTERS.c.node.in_(list(nodes)))
    return {node: int(n) for node, n in await conn.execute(stmt)}
