"""The edge agent's Prometheus metrics, read from its parts when `/metrics` is scraped.

Nothing here is counted on a hot path: a collector reads what the uplink, the
outbox, the device drivers and the snapshot store already keep. Labels are
device ids, device kinds, the codecs' short reject reasons and stream names; no
badge or person appears. Served by edge/status_server.py; the series are
listed in docs/operations.md.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ruang import __version__

from .devices import DeviceDriver
from .devices.deskunit import DeskUnitDriver
from .snapshot import SnapshotStore
from .uplink import Uplink

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class OldestRow:
    """When the oldest message still in the outbox file was made (its edge `ts`).

    Its own read-only connection: the outbox's connection belongs to its group
    commit, and WAL lets a reader look at the committed rows alongside it.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    def created(self) -> float | None:
        try:
            if self._db is None:
                self._db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=0.5)
            row = self._db.execute("SELECT created FROM outbox ORDER BY seq LIMIT 1").fetchone()
        except sqlite3.Error:
            self.close()  # reopened at the next scrape (the file may have been recovered)
            return None
        return None if row is None else float(row[0])

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


class EdgeMetrics:
    """One node's registry: the agent's parts, read at scrape time."""

    def __init__(
        self,
        node: str,
        *,
        uplink: Uplink,
        snapshots: SnapshotStore,
        desk_units: Callable[[], Sequence[DeskUnitDriver]],
        devices: Sequence[DeviceDriver],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.uplink = uplink
        self.snapshots = snapshots
        self.desk_units = desk_units
        self.devices = devices
        self.wall = wall
        self.oldest = OldestRow(uplink.outbox.path)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        self.oldest.close()


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)


def rejects_by_reason(driver: Any) -> dict[str, int]:
    """A driver's rejected input by reason; one bucket when it keeps only a total."""
    by_reason = getattr(driver, "rejected_by_reason", None)
    if by_reason is not None:
        return dict(by_reason)
    total = int(driver.health().rejected_frames)
    return {"rejected": total} if total else {}


class _Collector(Collector):
    def __init__(self, metrics: EdgeMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "ruang_edge_build_info", "Version of the running agent", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        yield from self._uplink()
        yield from self._devices()
        yield from self._snapshot()

    def _uplink(self) -> Iterator[Metric]:
        m = self._m
        uplink, outbox = m.uplink, m.uplink.outbox
        yield _gauge("ruang_edge_outbox_depth", "Messages the broker has not taken", outbox.depth)
        yield _gauge(
            "ruang_edge_outbox_awaiting_ack",
            "Events the broker took that the cloud has not confirmed",
            outbox.awaiting_ack,
        )
        yield _gauge("ruang_edge_outbox_bytes", "Logical size of the outbox", outbox.size_bytes)
        created = m.oldest.created()
        yield _gauge(
            "ruang_edge_outbox_oldest_age_seconds",
            "Age of the oldest message still in the outbox (0 when empty)",
            0.0 if created is None else max(0.0, m.wall() - created),
        )
        yield _counter(
            "ruang_edge_telemetry_shed",
            "Telemetry shed from the outbox at its size bound",
            outbox.dropped_telemetry,
        )
        yield _gauge(
            "ruang_edge_mqtt_connected",
            "1 while the uplink is connected",
            int(uplink.connected.is_set()),
        )
        stats = uplink.stats
        published = CounterMetricFamily(
            "ruang_edge_messages_published",
            "Messages the broker acknowledged, by stream (live, backlog)",
            labels=["stream"],
        )
        published.add_metric(["live"], stats.published_live)
        published.add_metric(["backlog"], stats.published_backlog)
        yield published
        yield _counter("ruang_edge_mqtt_reconnects", "Uplink reconnects", stats.reconnects)
        yield _counter("ruang_edge_events_resent", "Events resent for a missing ack", stats.resent)
        yield _counter("ruang_edge_cloud_acks", "Event acks from the cloud", stats.cloud_acks)
        yield _counter(
            "ruang_edge_commands_rejected", "Cloud commands refused", stats.rejected_commands
        )

    def _devices(self) -> Iterator[Metric]:
        m = self._m
        drivers: list[Any] = [*m.desk_units(), *m.devices]
        online = GaugeMetricFamily(
            "ruang_edge_device_online", "1 while the device answers", labels=["device", "kind"]
        )
        errors = CounterMetricFamily(
            "ruang_edge_device_read_errors",
            "Input the device's codec refused, by reason",
            labels=["device", "kind", "reason"],
        )
        for driver in drivers:
            health = driver.health()
            online.add_metric([health.device, health.kind], int(health.online))
            for reason, count in sorted(rejects_by_reason(driver).items()):
                errors.add_metric([health.device, health.kind, reason], count)
        yield online
        yield errors

    def _snapshot(self) -> Iterator[Metric]:
        m = self._m
        yield _counter(
            "ruang_edge_snapshots_rejected",
            "Snapshots refused (bad signature, not newer)",
            m.snapshots.rejected,
        )
        current = m.snapshots.current
        if current is None:
            return
        body = current.body
        yield _gauge(
            "ruang_edge_snapshot_age_seconds",
            "Time since the cloud issued the snapshot the node decides from",
            max(0.0, m.wall() - body.issued_at),
        )
        yield _gauge("ruang_edge_snapshot_version", "Version of that snapshot", current.version)
