"""The visitor log's retention: a visit is deleted `visitor_retention_days` after its window ends.

What is due is decided by the window's end alone (not by status), so a guest never
checked out is not kept for ever. The notifications about a visit (guest address,
name to the host) follow their own retention (cloud/notifications/retention.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import VISITS
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)


async def purge_visits(engine: AsyncEngine, now: datetime, retention_days: float) -> int:
    """Deletes the visits whose window ended at or before now - retention; returns how many."""
    cutoff = now - timedelta(days=retention_days)
    async with engine.begin() as conn:
        result = await conn.execute(delete(VISITS).where(VISITS.c.ends_at <= cutoff))
    return int(result.rowcount or 0)


class VisitPurger:
    """Runs `purge_visits` at start and every `interval_s`."""

    def __init__(
        self, engine: AsyncEngine, retention_days: float, interval_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self._engine, self._days, self._interval, self._clock = (
            engine, retention_days, interval_s, clock,
        )  # fmt: skip
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ruang-visit-purge")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                purged = await purge_visits(self._engine, self._clock(), self._days)
                if purged:
                    log.info("visitor log: %d visits past retention deleted", purged)
            except Exception as exc:
                log_failed_pass(log, "purging the visitor log failed; retrying next round", exc)
            await asyncio.sleep(self._interval)
