"""Fleet-view writes of ingested telemetry: node and device health, thinned history.

Latest health per node and per device is upserted; the history table
(node_health_samples) keeps at most one sample per node per
settings.fleet_sample_interval_s, pruned by the sweep (cloud/ingest/sweep.py).
Split out of the Applier (cloud/ingest/apply.py), which calls it inside its
transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import DEVICE_STATUS, NODES
from cloud.db.tables import NODE_HEALTH_SAMPLES as HEALTH_SAMPLES
from cloud.db.timestamps import utc
from cloud.ingest.items import ApplyResult, TelemetryBatch
from ruang import contract


class FleetWrites:
    """Builds the health upserts once; remembers the last history sample per node."""

    def __init__(self, insert: Callable[[Table], Any], sample_interval_s: float) -> None:
        self._insert = insert
        # Last health sample kept per node (cloud time): thins the history table.
        self._sampled: dict[str, float] = {}
        self._sample_interval = sample_interval_s
        health_ins = insert(NODES)
        self._node_health = health_ins.on_conflict_do_update(
            index_elements=[NODES.c.id],
            set_={
                **{
                    name: getattr(health_ins.excluded, name)
                    for name in ("health", "alarms", "clock_offset_s", "last_health_at")
                },
                # Optional in NodeHealth: absent means "could not read", not "zero".
                "outbox_depth": func.coalesce(
                    health_ins.excluded.outbox_depth, NODES.c.outbox_depth
                ),
                "config_version": func.coalesce(
                    health_ins.excluded.config_version, NODES.c.config_version
                ),
            },
        )
        device_ins = insert(DEVICE_STATUS)
        self._device_status = device_ins.on_conflict_do_update(
            index_elements=[DEVICE_STATUS.c.node_id, DEVICE_STATUS.c.device],
            set_={
                name: getattr(device_ins.excluded, name)
                for name in (
                    "kind",
                    "online",
                    "rejected_frames",
                    "last_reading_at",
                    "battery_pct",
                    "detail",
                    "updated_at",
                )
            },
        )

    def committed(self, result: ApplyResult) -> None:
        """Remembers the samples `result`'s transaction wrote (only after it committed)."""
        self._sampled.update(result.sampled_written)

    async def write(
        self,
        conn: AsyncConnection,
        batch: TelemetryBatch,
        result: ApplyResult,
        devices: dict[tuple[str, str], tuple[contract.DeviceHealth, float]],
    ) -> None:
        """Latest node and device health, and a thinned health history (the fleet view)."""
        if batch.health:
            rows = []
            for node, (h, received) in batch.health.items():
                rows.append(
                    {
                        "id": node,
                        "online": True,
                        "last_seen": utc(received),
                        # Edge clock minus cloud receive time: positive = edge ahead. It
                        # includes the one-way transit time (ms on a LAN): an upper bound.
                        "clock_offset_s": h.ts - received,
                        "last_health_at": utc(received),
                        "outbox_depth": h.outbox_depth,
                        "config_version": h.config_version,
                        "alarms": list(h.alarms),
                        "health": {
                            "cpu_pct": h.cpu_pct,
                            "rss_bytes": h.rss_bytes,
                            "mem_available_bytes": h.mem_available_bytes,
                            "disk_free_bytes": h.disk_free_bytes,
                            "temperature_c": h.temperature_c,
                            "dropped_telemetry": h.dropped_telemetry,
                            "rejected_frames": h.rejected_frames,
                            "mqtt_reconnects": h.mqtt_reconnects,
                            "units_online": h.units_online,
                            "uptime_s": h.uptime_s,
                        },
                    }
                )
            await conn.execute(self._node_health, rows)
            await self._health_samples(conn, batch, result)
        if devices:
            await conn.execute(
                self._device_status,
                [
                    {
                        "node_id": node,
                        "device": device,
                        "kind": d.kind,
                        "online": d.online,
                        "rejected_frames": d.rejected_frames,
                        "last_reading_at": (
                            None if d.last_reading_ts is None else utc(d.last_reading_ts)
                        ),
                        "battery_pct": d.battery_pct,
                        "detail": d.detail,
                        "updated_at": utc(received),
                    }
                    for (node, device), (d, received) in devices.items()
                ],
            )

    async def _health_samples(
        self, conn: AsyncConnection, batch: TelemetryBatch, result: ApplyResult
    ) -> None:
        known = self._sampled
        unknown = [node for node in batch.health if node not in known]
        if unknown:
            # First health since this process started: the newest stored sample
            # decides, so a restart does not add an extra sample.
            rows = await conn.execute(
                select(HEALTH_SAMPLES.c.node_id, func.max(HEALTH_SAMPLES.c.ts))
                .where(HEALTH_SAMPLES.c.node_id.in_(unknown))
                .group_by(HEALTH_SAMPLES.c.node_id)
            )
            for node, ts in rows:
                # SQLite's max() returns text, not a datetime; only the value matters.
                if isinstance(ts, str):
                    ts = datetime.fromisoformat(ts)
                if ts is not None:
                    known[node] = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
        samples = []
        for node, (h, received) in batch.health.items():
            if received - known.get(node, float("-inf")) < self._sample_interval:
                continue
            samples.append(
                {
                    "node_id": node,
                    "ts": utc(received),
                    "cpu_pct": h.cpu_pct,
                    "rss_bytes": h.rss_bytes,
                    "mem_available_bytes": h.mem_available_bytes,
                    "disk_free_bytes": h.disk_free_bytes,
                    "temperature_c": h.temperature_c,
                    "outbox_depth": h.outbox_depth,
                    "clock_offset_s": h.ts - received,
                }
            )
            result.sampled_written[node] = received
        if samples:
            await conn.execute(self._insert(HEALTH_SAMPLES), samples)
