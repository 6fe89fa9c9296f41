"""The ingestion sweep: nodes gone silent are marked offline; old health history pruned.

Run by the pipeline's write loop (cloud/ingest/pipeline.py) between flushes. A
node not heard from for settings.node_offline_after_s is marked offline (its
last will may never come if the broker itself went away) and a `node_state`
point goes to the time series; health samples older than
settings.fleet_history_hours are deleted (they are written by
cloud/ingest/apply_fleet.py, read by cloud/fleet/health.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.db.tables import NODE_HEALTH_SAMPLES, NODES
from cloud.db.timestamps import utc
from cloud.ingest.apply import Applier
from cloud.ingest.stats import IngestStats
from cloud.integrations.events import record_events
from cloud.settings import CloudSettings
from cloud.telemetry import lineprotocol
from cloud.telemetry.sinks import TelemetrySink

log = logging.getLogger(__name__)


async def mark_silent_nodes_offline(conn: AsyncConnection, cutoff: float) -> list[str]:
    """Marks offline every online node not heard from since `cutoff`; returns their ids."""
    rows = await conn.execute(
        update(NODES)
        .where(NODES.c.online.is_(True), NODES.c.last_seen < utc(cutoff))
        .values(online=False)
        .returning(NODES.c.id)
    )
    return [row[0] for row in rows]


async def prune_health_samples(conn: AsyncConnection, cutoff: float) -> int:
    """Deletes health samples received before `cutoff` (Unix s); returns how many."""
    result = await conn.execute(
        delete(NODE_HEALTH_SAMPLES).where(NODE_HEALTH_SAMPLES.c.ts < utc(cutoff))
    )
    return int(result.rowcount or 0)


class Sweep:
    def __init__(
        self,
        settings: CloudSettings,
        engine: AsyncEngine,
        applier: Applier,
        stats: IngestStats,
        sink: TelemetrySink,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._applier = applier
        self._stats = stats
        self._sink = sink
        self._clock = clock

    async def run(self) -> None:
        """One sweep; a database failure is recorded and left for the next one."""
        settings = self._settings
        cutoff = self._clock() - settings.node_offline_after_s
        history_cutoff = self._clock() - settings.fleet_history_hours * 3600
        try:
            async with self._engine.begin() as conn:
                silent = await mark_silent_nodes_offline(conn, cutoff)
                if silent:
                    # Same transaction: the event exists exactly when the node is marked.
                    at = utc(self._clock())
                    offline = [{"node": n, "online": False, "cause": "silent", "at": at}
                               for n in silent]  # fmt: skip
                    await record_events(conn, "node.offline", offline)
                await prune_health_samples(conn, history_cutoff)
        except Exception as exc:
            self._stats.error(f"database: {type(exc).__name__}: {exc}")
            return
        if silent:
            self._applier.forget_nodes(silent)
            self._stats.nodes_timed_out += len(silent)
            now = self._clock()
            self._sink.write([lineprotocol.node_state(node, False, now) for node in silent])
            log.info(
                "no message for %.0f s: %s marked offline",
                settings.node_offline_after_s,
                ", ".join(silent[:10]),
            )
