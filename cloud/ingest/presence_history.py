"""Desk presence drained from a node's outbox (backlog channel) -> `presence_changes`.

Live presence records a row when a desk's value changes (cloud/ingest/apply.py).
Samples from a backlog belong to the past: they must fill the sensed history of an
outage (or of the demo's simulated weeks) without touching the desks' current state,
whatever order they arrive in and however often a node resends them.

Each sample is stored once, keyed by (desk, ts, present): a sample already stored is
skipped, so a replayed or reordered backlog adds nothing. Samples are not reduced
to changes here: whether a sample is a change depends on the samples before it,
which may still be on their way (a later batch of the same outbox), and dropping
one would lose it for good. Readers pair the rows in time order and take a repeated
value as no change (cloud/analytics/history.py `intervals_from_marks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import PRESENCE_CHANGES as PC
from cloud.db.timestamps import utc

# desk -> [(present, edge ts)]
Samples = dict[str, list[tuple[bool, float]]]


async def merge_backlog_presence(conn: AsyncConnection, samples: Samples) -> int:
    """Stores the samples not stored yet, in time order; returns rows inserted."""
    inserted = 0
    for desk, desk_samples in samples.items():
        if desk_samples:
            inserted += await _merge_desk(conn, desk, desk_samples)
    return inserted


async def _merge_desk(
    conn: AsyncConnection, desk: str, desk_samples: Sequence[tuple[bool, float]]
) -> int:
    new = sorted({(utc(ts), present) for present, ts in desk_samples})
    stored: set[tuple[datetime, bool]] = {
        (r.ts, bool(r.present))
        for r in await conn.execute(
            select(PC.c.ts, PC.c.present).where(
                PC.c.desk_id == desk, PC.c.ts >= new[0][0], PC.c.ts <= new[-1][0]
            )
        )
    }
    rows = [
        {"desk_id": desk, "present": present, "ts": ts}
        for ts, present in new
        if (ts, present) not in stored
    ]
    if rows:
        await conn.execute(insert(PC), rows)
    return len(rows)
