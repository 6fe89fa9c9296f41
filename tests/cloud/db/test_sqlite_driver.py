"""The SQLite driver adapter: terminating a connection can never leave a task behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from cloud.db.engine import make_engine

# Keeps the connection's worker thread busy for a moment (a few million rows counted).
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) "
    "SELECT count(*) FROM c"
)


async def test_a_cancelled_invalidation_of_a_busy_connection_leaves_no_task_running(
    tmp_path: Path,
) -> None:
    # SQLAlchemy's own terminate starts a shielded graceful-close task. Cancelled while
    # the thread is busy (as a server shutdown cancels every request), that task and
    # the forced stop race and the task waits forever: the loop's shutdown then hangs.
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/driver.sqlite3")
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            busy = asyncio.create_task(driver.execute(SLOW))
            await asyncio.sleep(0.05)
            before = asyncio.all_tasks()
            invalidating = asyncio.create_task(conn.invalidate())
            await asyncio.sleep(0.05)
            started = asyncio.all_tasks() - before - {invalidating}
            invalidating.cancel()
            for task in started:
                task.cancel()
            # Bounds a hang only; how fast it ends is not the point.
            _, pending = await asyncio.wait({busy, invalidating, *started}, timeout=30)
            assert not pending, f"still running after cancellation: {pending}"
            assert not started, f"terminate started tasks of its own: {started}"
        thread = driver._thread
        await asyncio.to_thread(thread.join, 30)
        assert not thread.is_alive(), "the connection's worker thread did not stop"
        async with engine.connect() as conn:  # the pool hands out a fresh connection
            assert await conn.scalar(text("SELECT 2")) == 2
    finally:
        await engine.dispose()
