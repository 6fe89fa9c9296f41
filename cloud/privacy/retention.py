"""Retention of the raw per-person records: each data class is deleted past its age.

The classes are the records that say where an identified person was, tap by tap:
the edge events (`events`: raw badge, check-ins, door decisions, boardings), the
door access log, shuttle boardings, pool-car pick-ups and returns, and the pool
cars' position fixes. Their ages come from settings (`RUANG_RETENTION_*_DAYS`,
defaults in docs/privacy.md "Retention"). Aggregates are not touched: bookings,
analytics and ridership counts keep their history (a booking's record is what
utilisation is computed from; its retention is the operator's call, see the doc).

Deletion goes in batches of `retention_batch_rows`, each its own short transaction,
so a purge of millions of rows never holds a lock that live ingestion waits on for
long. The events table is also the exactly-once de-dup store: an event older than
the ingestion window (`ingest_max_age_s`) is refused as clock skew before de-dup,
so its row is kept at least that long plus a day whatever its class says.

Other classes have purges of their own: visits (cloud/visitors/retention.py), the
admin and access audit (cloud/admin/audit.py), notifications
(cloud/notifications/retention.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import (
    ACCESS_LOG,
    CAR_POSITIONS,
    EVENTS,
    TRANSPORT_BOARDINGS,
    TRANSPORT_CAR_USES,
)
from cloud.settings import CloudSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataClass:
    """One kind of record: its table, the column its age is read from, and the setting
    (a `CloudSettings` field, in days) that says how old it may get."""

    name: str
    table: Table
    ts_column: str
    setting: str


CLASSES = (
    DataClass("events", EVENTS, "ts", "retention_events_days"),
    DataClass("access_log", ACCESS_LOG, "ts", "retention_access_log_days"),
    DataClass("boardings", TRANSPORT_BOARDINGS, "ts", "retention_boardings_days"),
    DataClass("car_uses", TRANSPORT_CAR_USES, "ts", "retention_car_uses_days"),
    DataClass("car_positions", CAR_POSITIONS, "ts", "retention_car_positions_days"),
)


def cutoff(data: DataClass, settings: CloudSettings, now: datetime) -> datetime:
    """Rows of `data` older than this are due."""
    days = float(getattr(settings, data.setting))
    if data.table is EVENTS:  # the de-dup store outlives the ingestion window
        days = max(days, settings.ingest_max_age_s / 86400 + 1)
    return now - timedelta(days=days)


async def _purge_class(
    engine: AsyncEngine, data: DataClass, before: datetime, batch_rows: int
) -> int:
    table = data.table
    (key,) = table.primary_key.columns
    due = select(key).where(table.c[data.ts_column] < before).limit(batch_rows)
    gone = 0
    while True:
        async with engine.begin() as conn:
            # Materialised first: SQLite and PostgreSQL both take a LIMITed key list in IN.
            keys = list((await conn.scalars(due)).all())
            if keys:
                await conn.execute(delete(table).where(key.in_(keys)))
        gone += len(keys)
        if len(keys) < batch_rows:
            return gone
        await asyncio.sleep(0)  # let the event loop serve others between batches


async def purge_due(
    engine: AsyncEngine, settings: CloudSettings, now: datetime | None = None
) -> dict[str, int]:
    """Deletes every record past its class's age; how many went, per class."""
    now = now or datetime.now(UTC)
    return {
        data.name: await _purge_class(
            engine, data, cutoff(data, settings, now), settings.retention_batch_rows
        )
        for data in CLASSES
    }


class RetentionPurge:
    """Runs `purge_due` at start and then every `retention_purge_interval_s` (jobs leader)."""

    def __init__(self, engine: AsyncEngine, settings: CloudSettings) -> None:
        self._engine, self._settings = engine, settings
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> dict[str, int]:
        gone = await purge_due(self._engine, self._settings, now)
        if any(gone.values()):
            log.info("retention: deleted %s", ", ".join(f"{k} {v}" for k, v in gone.items() if v))
        return gone

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # a busy database must not end the job: try again later
                log_failed_pass(log, "retention purge failed", exc)
            await asyncio.sleep(self._settings.retention_purge_interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
