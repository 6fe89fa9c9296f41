"""Time-series sinks for telemetry lines: InfluxDB (or compatible) and a local SQLite fallback.

Both take pre-formatted line-protocol strings, hand them to a background
thread at once (`write` never blocks ingestion) and count what was written or
failed. A failed write is counted and logged, never raised into ingestion.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import WriteApi, WriteOptions

from cloud.settings import CloudSettings
from ruang.private_files import create_private_file

log = logging.getLogger(__name__)

# Lines joined into one record handed to the influx batching pipeline: each
# record costs a trip through its reactive pipeline, so one per line would
# spend more CPU there than ingestion spends on the message itself.
LINES_PER_RECORD = 1000
ERROR_LOG_INTERVAL_S = 10.0


@dataclass
class SinkStats:
    submitted: int = 0
    written: int = 0
    failed: int = 0
    retries: int = 0
    last_error: str | None = None

    @property
    def pending(self) -> int:
        return self.submitted - self.written - self.failed


class TelemetrySink(Protocol):
    """Where telemetry lines go; `write` is non-blocking, `flush` waits until they are stored."""

    stats: SinkStats
    description: str

    def write(self, lines: Sequence[str]) -> None: ...

    async def flush(self) -> None:
        """Returns once every line written so far is stored or counted as failed.

        Callers bound the wait with `asyncio.timeout`.
        """

    async def close(self) -> None: ...


class _ErrorLog:
    """Logs a write failure at most every ERROR_LOG_INTERVAL_S, with how many were folded."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._last = float("-inf")
        self._suppressed = 0

    def __call__(self, error: str) -> None:
        now = time.monotonic()
        if now - self._last < ERROR_LOG_INTERVAL_S:
            self._suppressed += 1
            return
        log.warning(
            "%s write failed (%d more since last report): %s", self._what, self._suppressed, error
        )
        self._last, self._suppressed = now, 0


async def _wait_drained(stats: SinkStats) -> None:
    # The writer threads only bump counters, so polling them is the simplest
    # hand-over that needs no cross-thread wake-up.
    while stats.pending > 0:  # noqa: ASYNC110 - counters bumped by threads
        await asyncio.sleep(0.02)


def _line_count(data: Any) -> int:
    if isinstance(data, bytes | bytearray):
        return data.count(b"\n") + 1
    if isinstance(data, str):
        return data.count("\n") + 1
    return 1


class InfluxSink:
    """Writes through influxdb-client's batching `WriteApi` (InfluxDB 2 API, or VictoriaMetrics)."""

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        org: str = "ruang",
        bucket: str = "ruang",
        batch_size: int = 5,
        flush_interval_ms: int = 200,
        max_retries: int = 3,
    ) -> None:
        self.stats = SinkStats()
        self.description = f"InfluxDB at {url} (bucket {bucket!r})"
        self._bucket, self._org = bucket, org
        self._log_error = _ErrorLog("telemetry (influx)")
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=10_000)
        options = WriteOptions(
            batch_size=batch_size,
            flush_interval=flush_interval_ms,
            max_retries=max_retries,
            retry_interval=500,
            max_retry_delay=5_000,
            max_retry_time=15_000,
            exponential_base=2,
        )
        self._api: WriteApi = self._client.write_api(
            write_options=options,
            success_callback=self._on_success,
            error_callback=self._on_error,
            retry_callback=self._on_retry,
        )

    # The callbacks run on the client's writer thread; int += is safe enough for counters.
    def _on_success(self, _conf: Any, data: Any) -> None:
        self.stats.written += _line_count(data)

    def _on_error(self, _conf: Any, data: Any, exc: BaseException) -> None:
        self.stats.failed += _line_count(data)
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        self._log_error(self.stats.last_error)

    def _on_retry(self, _conf: Any, _data: Any, exc: BaseException) -> None:
        self.stats.retries += 1

    def write(self, lines: Sequence[str]) -> None:
        for start in range(0, len(lines), LINES_PER_RECORD):
            chunk = lines[start : start + LINES_PER_RECORD]
            self.stats.submitted += len(chunk)
            try:
                self._api.write(
                    bucket=self._bucket,
                    org=self._org,
                    record="\n".join(chunk),  # default precision: nanoseconds
                )
            except Exception as exc:  # a closed or broken pipeline: count, never raise
                self._on_error(None, "\n".join(chunk), exc)

    async def flush(self) -> None:
        # WriteApi.flush() is a no-op in batching mode; wait for the callbacks instead.
        await _wait_drained(self.stats)

    async def close(self) -> None:
        # close() blocks until the batching thread has sent what it holds.
        await asyncio.to_thread(self._api.close)
        self._client.close()  # type: ignore[no-untyped-call]


class LocalSqliteSink:
    """Keeps the lines in a small SQLite file when no InfluxDB is configured."""

    def __init__(self, path: Path) -> None:
        self.stats = SinkStats()
        self.path = Path(path)
        self.description = f"local SQLite file {self.path}"
        create_private_file(self.path)  # telemetry names desks and badges
        self._log_error = _ErrorLog("telemetry (local)")
        self._queue: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="ruang-telemetry-sqlite", daemon=True
        )
        self._thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        # The connection lives on this thread only (sqlite3 objects are per-thread).
        db = sqlite3.connect(self.path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS points ("
                "id INTEGER PRIMARY KEY, received_at REAL NOT NULL, line TEXT NOT NULL)"
            )
            db.commit()
        finally:
            ready.set()
        while (batch := self._queue.get()) is not None:
            try:
                now = time.time()
                with db:
                    db.executemany(
                        "INSERT INTO points (received_at, line) VALUES (?, ?)",
                        [(now, line) for line in batch],
                    )
                self.stats.written += len(batch)
            except sqlite3.Error as exc:
                self.stats.failed += len(batch)
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self._log_error(self.stats.last_error)
        db.close()

    def write(self, lines: Sequence[str]) -> None:
        if lines:
            self.stats.submitted += len(lines)
            self._queue.put(list(lines))

    async def flush(self) -> None:
        await _wait_drained(self.stats)

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join, 10.0)

    def read_lines(self) -> list[str]:
        """Every stored line, oldest first (for tests and for exporting later)."""
        with sqlite3.connect(self.path) as db:
            return [row[0] for row in db.execute("SELECT line FROM points ORDER BY id")]


def make_sink(settings: CloudSettings) -> TelemetrySink:
    """The InfluxSink when RUANG_INFLUX_URL is set, else the local SQLite sink (said once)."""
    if settings.influx_url:
        return InfluxSink(
            settings.influx_url,
            token=settings.influx_token,
            org=settings.influx_org,
            bucket=settings.influx_bucket,
        )
    sink = LocalSqliteSink(settings.telemetry_sqlite_path)
    log.warning("RUANG_INFLUX_URL is not set: telemetry is kept locally in %s", sink.path)
    return sink
