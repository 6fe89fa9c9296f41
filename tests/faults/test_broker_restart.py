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

import pytest

from launch import devservers
from tests.faults.support import EdgeChild, running_cloud, stored_exactly_once

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

            stats = await stored_exactly_once(cloud, node, edge.durable, TOTAL)
            assert stats["connects"] >= 2  # the cloud really lost and regained the broker
            assert stats["write_errors"] == 0 and not stats["rejected"]
