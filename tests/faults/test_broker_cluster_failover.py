"""A node of a 3-node broker cluster killed outright (SIGKILL) mid-stream of 4,000 events.

The cluster is NATS Server with MQTT, its sessions, queued QoS 1 messages and retained
messages in JetStream streams replicated on all three nodes, started from the
reference config deploy/nats/ruang-node.conf (docs/operations.md, "Broker cluster"),
MQTT over TLS as that config requires.
Edge and cloud are given the three nodes' URLs and both start on the first; the test
kills the node the edge is connected to, so both lose their broker at once. The edge
must reconnect to another node, its outbox must empty (every event acknowledged by
the cloud's `event_ack`, resends included), and the cloud must hold each event
exactly once: losing a broker node loses nothing.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from launch import devservers
from tests.faults.support import EdgeChild, running_cloud, stored_exactly_once
from tests.helpers import eventually, missing

pytestmark = pytest.mark.servers

TOTAL = 4_000


def _edge_node(cluster: devservers.NatsCluster, client_id: str) -> devservers.NatsNode | None:
    """The running node the edge's MQTT connection is on (its /connz lists the client id)."""
    for node in cluster.nodes:
        if not node.running:
            continue
        try:
            page = node.monitor(f"/connz?mqtt_client={client_id}")
        except OSError:
            continue
        if page.get("num_connections"):
            return node
    return None


async def test_killing_the_broker_node_an_edge_uses_moves_it_to_another_and_loses_no_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = "fault-cluster"
    client_id = f"ruang-edge-{node}"
    try:
        devservers.find_binary("nats-server")
    except devservers.ServerUnavailable:
        missing("nats-server")
    with devservers.nats_cluster() as cluster:
        # mqtts:// to every node, checked against the cluster's CA: the cloud's settings
        # and the edge child (which inherits the environment) both read it from here.
        monkeypatch.setenv("RUANG_MQTT_CA_FILE", str(cluster.ca))
        assert cluster.url.startswith("mqtts://")
        async with running_cloud(tmp_path, cluster.url, [node]) as cloud:
            edge = await EdgeChild.start(tmp_path / "edge", cluster.url, node, "cl", TOTAL)
            try:
                await edge.read_until(durable=TOTAL // 2)

                async def edge_on() -> devservers.NatsNode | None:
                    return await asyncio.to_thread(_edge_node, cluster, client_id)

                first = await eventually(edge_on, what="the edge connected to a node")
                # The first URL of the list: edge and cloud lose their broker together.
                assert first is cluster.nodes[0]
                first.stop(signal.SIGKILL)

                second = await eventually(
                    edge_on, timeout=60, what="the edge reconnected to another node"
                )
                assert second is not first and second.running
                # Drained = the cloud acknowledged every event, resends included.
                await edge.read_until(drained=True, timeout=180)
            finally:
                await edge.finish()
            assert len(edge.durable) == TOTAL

            stats = await stored_exactly_once(cloud, node, edge.durable, TOTAL)
            assert stats["connects"] >= 2  # the cloud too lost its node and found another
            assert stats["write_errors"] == 0 and not stats["rejected"]
