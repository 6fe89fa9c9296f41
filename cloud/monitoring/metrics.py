"""The cloud process's Prometheus metrics: one registry per app, read at scrape time.

Counters that ingestion already keeps (cloud/ingest/stats.py) are not doubled:
a collector reads them when `/metrics` is scraped, so the hot path pays nothing
for monitoring. Only the HTTP latency histogram is observed as requests finish
(cloud/monitoring/http_latency.py). Figures held in the database (the webhook
and notification outboxes) are counted by `refresh` just before rendering.

Every series is a figure of the process, never of a person: labels are message
kinds, refusal categories, channels, outbox names, route templates and status
classes, all from small fixed sets. docs/operations.md lists the series.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import State

from cloud.db.tables import NOTIFICATION_DELIVERIES, WEBHOOK_DELIVERIES
from cloud.ingest.stats import LAG_BUCKETS_S, IngestStats
from ruang import __version__

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Request durations: an API answer in milliseconds, a CSV export or import in seconds.
HTTP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class CloudMetrics:
    """The metrics of one app: its own registry, so several apps in a process never collide.

    `job_leader` is True while this process runs the scheduled jobs (auto-release,
    snapshots, webhook and notification dispatch, retention); the lifespan sets it,
    and leader election sets and clears it when it wins or loses the lease.
    """

    def __init__(self, state: State) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.job_leader = False
        self.http = Histogram(
            "ruang_http_request_duration_seconds",
            "HTTP request duration by method, route template and status class",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS_S,
            registry=self.registry,
        )
        self._state = state
        # Pending rows per outbox, or None when the database could not be read.
        self.outbox_pending: dict[str, int] | None = None
        self.registry.register(_Collector(self))

    def _part(self, name: str) -> Any:
        # The app's parts appear in its lifespan; a process role may not have them all.
        return getattr(self._state, name, None)

    async def refresh(self) -> None:
        """Reads the figures that live in the database (outbox depths)."""
        engine: AsyncEngine | None = self._part("engine")
        if engine is None:
            self.outbox_pending = None
            return
        webhooks = (
            select(func.count())
            .select_from(WEBHOOK_DELIVERIES)
            .where(
                WEBHOOK_DELIVERIES.c.delivered_at.is_(None),
                WEBHOOK_DELIVERIES.c.gave_up.is_(False),
            )
        )
        notifications = (
            select(func.count())
            .select_from(NOTIFICATION_DELIVERIES)
            .where(NOTIFICATION_DELIVERIES.c.status == "pending")
        )
        try:
            async with engine.connect() as conn:
                self.outbox_pending = {
                    "webhook": int((await conn.execute(webhooks)).scalar_one()),
                    "notification": int((await conn.execute(notifications)).scalar_one()),
                }
        except Exception as exc:  # a scrape must answer even with the database down
            log.warning("metrics: cannot count the outboxes: %s", exc)
            self.outbox_pending = None

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)


def _labelled(
    family: CounterMetricFamily | GaugeMetricFamily, counts: dict[str, int]
) -> CounterMetricFamily | GaugeMetricFamily:
    for label, value in sorted(counts.items()):
        family.add_metric([label], value)
    return family


def lag_family(stats: IngestStats) -> HistogramMetricFamily:
    """The lag histogram in Prometheus form (cumulative buckets, +Inf last)."""
    family = HistogramMetricFamily(
        "ruang_ingest_lag_seconds",
        "Cloud receive time minus the message's edge timestamp, by channel",
        labels=["channel"],
    )
    bounds = [*(repr(b) for b in LAG_BUCKETS_S), "+Inf"]
    for channel, counts in sorted(stats.lag.counts.items()):
        cumulative, running = [], 0
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            cumulative.append((bound, running))
        family.add_metric([channel], cumulative, sum_value=stats.lag.sums[channel])
    return family


class _Collector(Collector):
    def __init__(self, metrics: CloudMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m = self._metrics
        info = GaugeMetricFamily(
            "ruang_build_info", "Version of the running cloud", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        # The role's status knows whether leader election made this process the leader
        # (cloud/runtime/components.py); an app without it reports `job_leader` as set.
        status = m._part("role_status")
        leading = bool(status.leader) if status is not None else m.job_leader
        yield GaugeMetricFamily(
            "ruang_job_leader",
            "1 while this process runs the scheduled jobs",
            value=1 if leading else 0,
        )
        ingestor = m._part("ingestor")
        if ingestor is not None:
            yield from _ingest_families(ingestor)
        yield from _pool_families(m._part("engine"))
        pending = m.outbox_pending
        if pending is not None:
            yield _labelled(
                GaugeMetricFamily(
                    "ruang_outbox_pending",
                    "Deliveries waiting to be sent, by outbox (webhook, notification)",
                    labels=["outbox"],
                ),
                pending,
            )


def _ingest_families(ingestor: Any) -> Iterator[Metric]:
    s: IngestStats = ingestor.stats
    yield _counter("ruang_ingest_received", "MQTT messages received", s.received)
    yield _labelled(
        CounterMetricFamily(
            "ruang_ingest_messages",
            "Messages accepted (valid, inside the clock window) by kind",
            labels=["kind"],
        ),
        s.accepted,
    )
    yield _labelled(
        CounterMetricFamily(
            "ruang_ingest_rejected", "Messages refused, by reason category", labels=["reason"]
        ),
        s.rejected,
    )
    yield _counter("ruang_ingest_applied", "Events and states written to SQL", s.applied)
    yield _counter("ruang_ingest_duplicates", "Events already stored (resent)", s.duplicates)
    yield _counter("ruang_ingest_write_errors", "Failed database writes", s.write_errors)
    yield _counter("ruang_ingest_dead_lettered", "Messages parked as dead letters", s.dead_lettered)
    yield _counter(
        "ruang_ingest_telemetry_dropped",
        "Telemetry samples dropped after repeated write failures",
        s.telemetry_dropped,
    )
    yield lag_family(s)
    session = ingestor.session
    yield GaugeMetricFamily(
        "ruang_mqtt_connected", "1 while the broker session is up", value=int(session.connected)
    )
    yield _counter("ruang_mqtt_connects", "Broker sessions opened", session.connects)
    sink = ingestor.sink.stats
    yield _counter("ruang_telemetry_written", "Samples written to the time series", sink.written)
    yield _counter("ruang_telemetry_failed", "Samples the time series refused", sink.failed)
    yield GaugeMetricFamily(
        "ruang_telemetry_pending", "Samples waiting for the time series", value=sink.pending
    )


def _pool_families(engine: AsyncEngine | None) -> Iterator[Metric]:
    pool = None if engine is None else engine.pool
    checked_out = getattr(pool, "checkedout", None)
    if checked_out is None:
        return
    yield GaugeMetricFamily(
        "ruang_db_pool_in_use", "Database connections checked out of the pool", value=checked_out()
    )
    size = getattr(pool, "size", None)
    if size is not None:
        yield GaugeMetricFamily(
            "ruang_db_pool_size", "Connections the pool keeps open", value=size()
        )
