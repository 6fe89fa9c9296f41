"""Retention of the raw per-person records: each data class is deleted past its age.

The classes are the records that say where an identified person was, tap by tap:
the edge events (`events`: raw badge, check-ins, door decisions, boardings), the
door access log, shuttle boardings, pool-car pick-ups and returns, and the pool
cars' position fixes. Their ages come from settings (`RUANG_RETENTION_*_DAYS`,
defaults in docs/privacy.md "Retention"). Aggregates are not touched: bookings,
analytics and ridership counts keep their history (a booking's record is what
utilisation is computed from; its retention is the operator's call, see the doc).

A site can set its own period for a class (`RUANG_RETENTION_SITE_DAYS`, JSON: site ->
class -> days), longer or shorter than the deployment's. A record belongs to the site
of the node that reported it (the node's desks, rooms or vehicle), a pool car's fix to
the car's home site. Records of nodes that no site with a period of its own claims
follow the deployment's; a node serving two sites that both set one loses its records
at the shorter.

Deletion goes in batches of `retention_batch_rows`, each its own short transaction,
so a purge of millions of rows never holds a lock that live ingestion waits on for
long. The events table is also the exactly-once de-dup store: an event older than
the ingestion window (`ingest_max_age_s`) is refused as clock skew before de-dup,
so its row is kept at least that long plus a day whatever its class says.

The time series follow the same periods where Ruang owns the store: the local
telemetry file (`RUANG_TELEMETRY_SQLITE_PATH`, used when no InfluxDB is configured)
loses badge presence and BLE badge health lines past the events period and vehicle
positions past the pool-car fixes' period (`prune_local_telemetry`). An external
store (VictoriaMetrics, InfluxDB) prunes by its own retention setting, which the
operator sets to the presence period (docs/operations.md); its lines carry keyed
pseudonyms, never badge ids (cloud/privacy/pseudonyms.py).

Other classes have purges of their own: visits (cloud/visitors/retention.py), the
admin and access audit (cloud/admin/audit.py), notifications
(cloud/notifications/retention.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, Table, delete, select, true
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import (
    ACCESS_LOG,
    CAR_POSITIONS,
    EVENTS,
    TRANSPORT_BOARDINGS,
    TRANSPORT_CAR_USES,
)
from cloud.people.access import site_nodes, site_vehicles
from cloud.settings import RETENTION_CLASSES, CloudSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataClass:
    """One kind of record: its table, the column its age is read from, the setting
    (a `CloudSettings` field, in days) that says how old it may get, and the column
    that places a record at a site (a node id, or a vehicle id)."""

    name: str
    table: Table
    ts_column: str
    setting: str
    place_column: str = "node"


CLASSES = (
    DataClass("events", EVENTS, "ts", "retention_events_days"),
    DataClass("access_log", ACCESS_LOG, "ts", "retention_access_log_days"),
    DataClass("boardings", TRANSPORT_BOARDINGS, "ts", "retention_boardings_days"),
    DataClass("car_uses", TRANSPORT_CAR_USES, "ts", "retention_car_uses_days"),
    DataClass("car_positions", CAR_POSITIONS, "ts", "retention_car_positions_days", "vehicle_id"),
)
assert tuple(data.name for data in CLASSES) == RETENTION_CLASSES


def _days(data: DataClass, settings: CloudSettings, days: float) -> float:
    if data.table is EVENTS:  # the de-dup store outlives the ingestion window
        return max(days, settings.ingest_max_age_s / 86400 + 1)
    return days


def cutoff(
    data: DataClass, settings: CloudSettings, now: datetime, site: str | None = None
) -> datetime:
    """Rows of `data` older than this are due (at `site`, when it has a period of its own)."""
    days = float(getattr(settings, data.setting))
    if site is not None:
        days = settings.retention_site_days.get(site, {}).get(data.name, days)
    return now - timedelta(days=_days(data, settings, days))


async def _places(engine: AsyncEngine, data: DataClass, sites: list[str]) -> dict[str, set[str]]:
    """{site: the node (or vehicle) ids whose records are that site's}."""
    async with engine.connect() as conn:
        if data.place_column == "vehicle_id":
            return await site_vehicles(conn, sites)
        return await site_nodes(conn, sites)


async def _purge_class(
    engine: AsyncEngine, settings: CloudSettings, data: DataClass, now: datetime
) -> int:
    own = sorted(s for s, periods in settings.retention_site_days.items() if data.name in periods)
    places = await _places(engine, data, own) if own else {}
    column = data.table.c[data.place_column]
    gone = 0
    for site, ids in places.items():
        where = column.in_(sorted(ids))
        gone += await _delete_older(
            engine, data, cutoff(data, settings, now, site), where, settings
        )
    claimed = sorted(set().union(*places.values())) if places else []
    rest: ColumnElement[bool] = column.not_in(claimed) if claimed else true()
    return gone + await _delete_older(engine, data, cutoff(data, settings, now), rest, settings)


async def _delete_older(
    engine: AsyncEngine,
    data: DataClass,
    before: datetime,
    where: ColumnElement[bool],
    settings: CloudSettings,
) -> int:
    table = data.table
    batch_rows = settings.retention_batch_rows
    (key,) = table.primary_key.columns
    due = select(key).where(table.c[data.ts_column] < before, where).limit(batch_rows)
    # One statement per batch, the key list chosen inside the database (both engines
    # take a LIMITed subquery in IN): no key crosses into Python, so a 10-million-row
    # purge leaves the event loop free for whatever shares the process.
    batch = delete(table).where(key.in_(due.scalar_subquery()))
    gone = 0
    while True:
        async with engine.begin() as conn:
            deleted = int((await conn.execute(batch)).rowcount)
        gone += deleted
        if deleted < batch_rows:
            return gone
        await asyncio.sleep(0)  # let the event loop serve others between batches


async def purge_due(
    engine: AsyncEngine, settings: CloudSettings, now: datetime | None = None
) -> dict[str, int]:
    """Deletes every record past its class's age; how many went, per class."""
    now = now or datetime.now(UTC)
    return {data.name: await _purge_class(engine, settings, data, now) for data in CLASSES}


# Local telemetry lines that say where one badge (or a pool car) was, with the class
# whose period they follow: a LIKE pattern on the line -> class name.
TELEMETRY_PATTERNS = {
    "badge_presence,%": "events",
    "device_health,%,kind=ble\\_badge %": "events",
    "position,%": "car_positions",
}


def _prune_file(path: Path, due: list[tuple[str, float]]) -> int:
    db = sqlite3.connect(path, timeout=30)
    try:
        with db:
            return sum(
                db.execute(
                    "DELETE FROM points WHERE received_at < ? AND line LIKE ? ESCAPE '\\'",
                    (before, pattern),
                ).rowcount
                for pattern, before in due
            )
    finally:
        db.close()


async def prune_local_telemetry(settings: CloudSettings, now: datetime | None = None) -> int:
    """Deletes per-badge and vehicle lines past their period from the local telemetry
    file; 0 when telemetry goes to an external store or the file does not exist yet."""
    path = settings.telemetry_sqlite_path
    if settings.influx_url or not path.exists():
        return 0
    now = now or datetime.now(UTC)
    by_name = {data.name: data for data in CLASSES}
    due = [
        (pattern, cutoff(by_name[name], settings, now).timestamp())
        for pattern, name in TELEMETRY_PATTERNS.items()
    ]
    try:
        return await asyncio.to_thread(_prune_file, path, due)
    except sqlite3.OperationalError as exc:  # no table yet: nothing was ever written
        if "no such table" in str(exc):
            return 0
        raise


class RetentionPurge:
    """Runs `purge_due` at start and then every `retention_purge_interval_s` (jobs leader)."""

    def __init__(self, engine: AsyncEngine, settings: CloudSettings) -> None:
        self._engine, self._settings = engine, settings
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> dict[str, int]:
        gone = await purge_due(self._engine, self._settings, now)
        gone["telemetry_local"] = await prune_local_telemetry(self._settings, now)
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
