"""Broker killed and restarted in the middle of 10,000 events from an edge process.

The broker is stopped with SIGTERM: Mosquitto persists its queues by snapshot,
not by a write-ahead log, so after a SIGKILL it can lose QoS 1 messages it had
already acknowledged to the edge (which then, rightly, deleted them from its
outbox) — a property of the broker no client can repair (docs/edge-outbox.md).
SIGTERM still severs every connection mid-stream, mid-flight and mid-ack.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from ruang import devservers
from tests.faults.support import EdgeChild, running_cloud
from tests.helpers import eventually

pytestmark = pytest.mark.servers

TOTAL = 10_000


async def test_broker_killed_mid_stream_of_10000_events_cloud_stores_each_exactly_once(
    tmp_path: Path,
) -> None:
    node = "fault-broker"
    with devservers.mosquitto(persistence=True) as broker:
        async with running_cloud(tmp_path, broker.url) as cloud:
            edge = await EdgeChild.start(tmp_path / "edge", broker.url, node, "br", TOTAL)
            try:
                await edge.read_until(durable=TOTAL // 2)
                broker.stop(signal.SIGTERM)
                await asyncio.sleep(0.5)
                broker.start()
                await edge.read_until(drained=True, timeout=90)
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
