"""The retention purge on a grown PostgreSQL: 10 million due events, with live writes going on.

A PostgreSQL of its own (launch.devservers), migrated to head, gets `ROWS` raw events
(`events`, the table every tap lands in) that are all past the 90-day period, written
with one INSERT ... SELECT from generate_series. Then, while a writer inserts new
events one per transaction the way ingestion applies a tap (`WRITES_PER_S`, bounded),
`purge_due` deletes them in its batches of 5,000, each its own transaction.

Figures: the purge's time and rows/s; the live writer's commit latency p50/p99/max in
the 10 s before the purge and during it (the lock impact); rows left (must be 0 due,
and every live row kept). Targets: the 10 M purge within 20 minutes, the live writes'
p99 under 100 ms during the purge, and nothing live deleted.

`RUANG_BENCH_RETENTION_ROWS` lowers the row count for a quick look.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.targets import check

ROWS = int(os.environ.get("RUANG_BENCH_RETENTION_ROWS", "10000000"))
WRITES_PER_S = 100
BASELINE_S = 10.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _writer(engine: Any, stop: asyncio.Event, out: list[float], tag: str) -> None:
    from cloud.db.tables import EVENTS

    n = 0
    interval = 1 / WRITES_PER_S
    next_at = time.perf_counter()
    while not stop.is_set():
        now = datetime.now(UTC)
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(
                EVENTS.insert().values(
                    message_id=f"live-{tag}-{n}", node="node-live", desk="D-live",
                    kind="checkin", ts=now, received_at=now, badge="04AABBCCDD",
                    payload={"kind": "checkin"},
                )
            )  # fmt: skip
        out.append((time.perf_counter() - started) * 1000)
        n += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def _measure(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select, text

    from cloud.db.engine import make_engine, migrate
    from cloud.db.tables import EVENTS
    from cloud.privacy.retention import purge_due
    from cloud.settings import CloudSettings

    await migrate(url)
    purger = make_engine(url, pool_size=2)
    live = make_engine(url, pool_size=2)
    figures: dict[str, Any] = {"rows": ROWS}
    try:
        started = time.perf_counter()
        async with purger.begin() as conn:
            # Spread over 100..200 days ago: every row is past the 90-day period.
            await conn.execute(
                text(
                    "INSERT INTO events (message_id, node, desk, kind, ts, received_at, badge,"
                    " payload) SELECT 'old-' || g, 'node-' || (g % 50), 'D' || (g % 2000),"
                    " 'checkin', now() - interval '100 days' - (g % 8640000) * interval '1 s',"
                    " now() - interval '100 days', '04' || lpad(to_hex(g % 40000), 12, '0'),"
                    ' \'{"kind": "checkin"}\'::json FROM generate_series(1, :rows) AS g'
                ),
                {"rows": ROWS},
            )
        async with purger.connect() as conn:
            await conn.execute(text("ANALYZE events"))
        figures["seed_s"] = time.perf_counter() - started

        stop = asyncio.Event()
        before: list[float] = []
        during: list[float] = []
        writer = asyncio.create_task(_writer(live, stop, before, "a"))
        await asyncio.sleep(BASELINE_S)
        stop.set()
        await writer
        stop = asyncio.Event()
        writer = asyncio.create_task(_writer(live, stop, during, "b"))
        settings = CloudSettings(database_url=url)
        started = time.perf_counter()
        gone = await purge_due(purger, settings, datetime.now(UTC) + timedelta(seconds=1))
        figures["purge_s"] = time.perf_counter() - started
        stop.set()
        await writer
        figures["purged_events"] = gone["events"]
        figures["purge_rows_per_s"] = gone["events"] / figures["purge_s"]
        for name, values in (("before", before), ("during", during)):
            figures[f"live_writes_{name}"] = len(values)
            figures[f"live_p50_ms_{name}"] = _pct(values, 0.50)
            figures[f"live_p99_ms_{name}"] = _pct(values, 0.99)
            figures[f"live_max_ms_{name}"] = max(values, default=0.0)
        async with purger.connect() as conn:
            figures["old_rows_left"] = await conn.scalar(
                select(func.count()).select_from(EVENTS).where(EVENTS.c.node != "node-live")
            )
            figures["live_rows_kept"] = await conn.scalar(
                select(func.count()).select_from(EVENTS).where(EVENTS.c.node == "node-live")
            )
    finally:
        await purger.dispose()
        await live.dispose()
    written = figures["live_writes_before"] + figures["live_writes_during"]
    figures["live_rows_lost"] = written - figures["live_rows_kept"]
    check(figures, "purge_s", "<", 20 * 60 * ROWS / 10_000_000, " s")
    check(figures, "live_p99_ms_during", "<", 100, " ms")
    check(figures, "old_rows_left", "<", 1)
    check(figures, "live_rows_lost", "<", 1)
    return figures


def run() -> dict[str, Any]:
    from launch import devservers

    with devservers.postgres() as pg:
        url = pg.create_database("retention_bench")
        return asyncio.run(_measure(url))
