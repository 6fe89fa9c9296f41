"""Broker killed outright (SIGKILL) and restarted amid 10,000 events from an edge process.

Mosquitto persists its queues by periodic snapshot, not by a write-ahead log, so a
SIGKILL can lose QoS 1 messages it had already PUBACKed, to the edge and to the
cloud alike. Delivery is made end to end at the application level: the edge keeps
every event after the broker's PUBACK until the cloud's `event_ack` says it is
committed, and resends what stays unacknowledged; the cloud drops the duplicates
by message id. The cloud must end with each of the 10,000 exactly once.

The broker saves its store once a second (time-based autosave, as a production
broker would, rather than the dev default of a save per change), so the SIGKILL
really does lose messages it had acknowledged.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from launch import devservers
from tests.faults.support import EdgeChild, running_cloud
from tests.helpers import eventually

pytestmark = pytest.mark.servers

TOTAL = 10_000


async def test_broker_killed_mid_stream_of_10000_events_cloud_stores_each_exactly_once(
    tmp_path: Path,
) -> None:
    node = "fault-broker"
    broker_conf = "autosave_on_changes false\nautosave_interval 1"
    with devservers.mosquitto(broker_conf, persistence=True) as broker:
        async with running_cloud(tmp_path, broker.url, [node]) as cloud:
            edge = await EdgeChild.start(tmp_path / "edge", broker.url, node, "br", TOTAL)
            try:
                await edge.read_until(durable=TOTAL // 2)
                broker.stop(signal.SIGKILL)
                await asyncio.sleep(0.5)
                broker.start()
                # Drained = the cloud acknowledged every event, resends included.
                await edge.read_until(drained=True, timeout=180)
            finally:
                await edge.finish()
            assert len(edge.durable) == TOTAL

            progress: list[object] = []

            async def all_stored() -> bool:
                progress[:] = [await cloud.rows(node), await cloud.ingest_stats()]
                return progress[0] == TOTAL

            try:
                await eventually(all_stored, timeout=150, what=f"{TOTAL} events in the cloud")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; rows and ingest stats: {progress}") from None

            # Every message the broker handed over more than once is recognised as a
            # duplicate and dropped: once the cloud has worked through what it received
            # (redeliveries may still be in its queue), the counters add up exactly.
            async def counted() -> dict[str, Any]:
                s = await cloud.ingest_stats()
                done = s["received"] == s["applied"] + s["duplicates"] + s["stale_deaths"]
                return s if done else {}

            stats = await eventually(counted, timeout=150, what="every received message counted")
            rows, distinct, ids = cloud.event_rows(node)
            assert rows == distinct == TOTAL
            assert ids == set(edge.durable)
            assert stats["connects"] >= 2  # the cloud really lost and regained the broker
            assert stats["write_errors"] == 0 and not stats["rejected"]
