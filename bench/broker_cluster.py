"""Broker-node fail-over: how long an edge node is cut off when its broker node dies.

A 3-node NATS cluster (launch/devservers.py `nats_cluster`, from the reference config
deploy/nats/ruang-node.conf, MQTT over TLS) and the edge's real uplink (edge/uplink.py)
given all three nodes' URLs, publishing a steady stream of events (`RATE` per second)
through its outbox. A plain subscriber on another node receives them. Each round
SIGKILLs the node the uplink is connected to, then measures:

- reconnect_s: from the kill until the uplink is connected to another node;
- flow_s: from the kill until the subscriber receives an event published after it
  (the stream is flowing again end to end, through the survivors' JetStream).

The killed node is restarted (same store) and the cluster is let settle before the
next round; figures are the median and the worst of `ROUNDS`. Most of the time is
the cluster's, not the uplink's: until JetStream has elected new leaders for the MQTT
streams the dead node led, the survivors close new MQTT sessions or refuse their
subscriptions, and the uplink goes round the ring (a short jitter per node, the
backoff growing only once per failed round, ruang/mqtt_url.py). Target: flow resumes
within 30 s; the outbox holds everything meanwhile, so this bounds the delay of a
tap's record, never its loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt

from bench.targets import check
from edge.settings import EdgeSettings
from edge.uplink import Uplink
from launch import devservers
from ruang import contract
from ruang.tls import client_tls_context

ROUNDS = 3
RATE = 50.0
NODE = "bench-cluster-edge"


async def _subscriber(
    node: devservers.NatsNode, ca: Path, seen: dict[str, float], ready: asyncio.Event
) -> None:
    """Records the arrival time of every event id of NODE, through `node`."""
    async with aiomqtt.Client(
        devservers.LOOPBACK,
        node.mqtt_port,
        identifier=f"bench-sub-{uuid.uuid4().hex[:6]}",
        tls_context=client_tls_context(ca),
    ) as client:
        await client.subscribe(f"{contract.TOPIC_ROOT}/nodes/{NODE}/events/#", qos=1)
        ready.set()
        async for message in client.messages:
            try:
                _, event = contract.decode(str(message.topic), bytes(message.payload))  # type: ignore[arg-type]
            except ValueError:
                continue
            ident = getattr(event, "id", None)
            if isinstance(ident, str):
                seen.setdefault(ident, time.monotonic())


async def _round(
    cluster: devservers.NatsCluster, uplink: Uplink, published: dict[str, float]
) -> tuple[float, float]:
    """Kills the uplink's node; (reconnect_s, flow_s), the killed node restarted after."""
    victim = cluster.node_on(uplink.broker.port)
    # The watcher listens on a node that survives, subscribed before the kill.
    watch_on = next(n for n in cluster.nodes if n is not victim and n.running)
    seen: dict[str, float] = {}
    ready = asyncio.Event()
    watcher = asyncio.create_task(_subscriber(watch_on, cluster.ca, seen, ready))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        await asyncio.sleep(1.0)  # flowing to the watcher before the kill
        killed_at = time.monotonic()
        victim.stop(signal.SIGKILL)
        reconnected = flowing = None
        while reconnected is None or flowing is None:
            now = time.monotonic()
            if now > killed_at + 120:
                raise RuntimeError("no fail-over within 120 s")
            if reconnected is None and uplink.connected.is_set():
                if uplink.broker.port != victim.mqtt_port:
                    reconnected = now - killed_at
            if flowing is None:
                after = [t for ident, t in seen.items() if published.get(ident, 0.0) > killed_at]
                if after:
                    flowing = min(after) - killed_at
            await asyncio.sleep(0.01)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await watcher
    victim.start()
    await asyncio.to_thread(cluster.wait_ready, 60.0)
    return reconnected, flowing


async def _measure(tmp: Path) -> dict[str, Any]:
    reconnects: list[float] = []
    flows: list[float] = []
    with devservers.nats_cluster() as cluster:
        settings = EdgeSettings(
            node_id=NODE, mqtt_url=cluster.url, mqtt_ca_file=cluster.ca, state_dir=tmp / "edge"
        )

        async def ignore(_: contract.Message) -> None:
            return None

        uplink = Uplink(
            settings,
            birth=lambda b: contract.NodeState(node=NODE, online=True, bdseq=b),
            on_command=ignore,
        )
        published: dict[str, float] = {}

        async def stream() -> None:
            i = 0
            while True:
                event = contract.ButtonPressed(node=NODE, desk="D01", button=i % 4)
                published[event.id] = time.monotonic()
                uplink.publish(event)
                i += 1
                await asyncio.sleep(1 / RATE)

        runner = asyncio.create_task(uplink.run())
        streamer: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(60):
                await uplink.connected.wait()
            streamer = asyncio.create_task(stream())
            for _ in range(ROUNDS):
                reconnect, flow = await _round(cluster, uplink, published)
                reconnects.append(reconnect)
                flows.append(flow)
        finally:
            for task in (streamer, runner):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    figures: dict[str, Any] = {
        "rounds": len(flows),
        "reconnect_s_median": statistics.median(reconnects),
        "reconnect_s_max": max(reconnects),
        "flow_s_median": statistics.median(flows),
        "flow_s_max": max(flows),
    }
    check(figures, "flow_s_max", "<", 30.0, " s")
    return figures


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ruang-bench-cluster-") as tmp:
        return asyncio.run(_measure(Path(tmp)))
