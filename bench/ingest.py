"""Benchmark: cloud ingestion drain rate against a bare paho-mqtt subscriber on the same broker.

Method (backlog drain, identical for both sides): a subscriber first connects
with a persistent session (clean_session=False, QoS 0 telemetry subscriptions)
and disconnects; a few paho publishers then put N pre-encoded contract
telemetry messages (presence and heartbeat from `nodes` simulated nodes x
`desks_per_node` desks) into the broker, which queues them for the offline
session (Mosquitto runs with `queue_qos0_messages true` and unlimited queues);
the clock starts when the subscriber reconnects and stops when

  (a) the bare paho subscriber has counted N messages (the ceiling), or
  (b) the cloud `Ingestor` has validated every message with the contract,
      applied it to SQLite (coalesced upserts) and the InfluxSink has had
      every line acknowledged by VictoriaMetrics.

Publishing is outside the measured window, so publisher speed does not count.
Everything runs on loopback; message count and every wait are bounded.
Run: `python -m bench.ingest [N]` (prints JSON).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.targets import check
from cloud.buildings.layout import Layout, apply_layout, parse_layout
from cloud.db.engine import make_engine, migrate
from cloud.ingest.pipeline import Ingestor
from cloud.settings import CloudSettings
from cloud.telemetry.sinks import InfluxSink
from launch import devservers
from ruang import contract

PUBLISHERS = 4
TIMEOUT_S = 120.0
# Ingestion (validation, SQL, time series) against a bare client doing nothing (issue 16).
TARGET_RATIO = 0.8


def build_messages(
    count: int, nodes: int = 200, desks_per_node: int = 5
) -> list[tuple[str, bytes]]:
    """`count` valid contract telemetry messages (topic, payload), round-robin over desks."""
    start = time.time()
    out: list[tuple[str, bytes]] = []
    for i in range(count):
        n, d = (i // desks_per_node) % nodes, i % desks_per_node
        node, desk = f"node-{n:03d}", f"desk-{n:03d}-{d}"
        body: dict[str, object] = {
            "v": 1,
            "id": f"bench{i:012d}",
            "node": node,
            "ts": start + i * 1e-4,
            "desk": desk,
        }
        if (i // (nodes * desks_per_node)) % 2 == 0:
            body["present"] = (i // 7) % 2 == 0
            kind = "presence"
        else:
            body["uptime_s"] = i
            kind = "heartbeat"
        out.append((contract.telemetry_topic(node, kind), orjson.dumps(body)))
    # The payloads must be what a real edge sends: check a sample against the contract.
    for topic, payload in out[:: max(1, count // 50)]:
        contract.decode(topic, payload)
    return out


def bench_layout(nodes: int = 200, desks_per_node: int = 5) -> Layout:
    """The layout binding every desk `build_messages` names to its node (one floor each):
    the cloud refuses presence for desks it does not know (cloud/ingest/bindings.py)."""
    floors = [
        {
            "id": f"floor-{n:03d}",
            "level": n,
            "name": f"L{n}",
            "node": f"node-{n:03d}",
            "zones": [
                {
                    "id": f"zone-{n:03d}",
                    "name": f"Z{n}",
                    "desks": [{"id": f"desk-{n:03d}-{d}"} for d in range(desks_per_node)],
                }
            ],
        }
        for n in range(nodes)
    ]
    return parse_layout(
        {
            "site": {"id": "bench", "name": "Bench"},
            "buildings": [{"id": "bench-b", "name": "B", "floors": floors}],
        }
    )


def _publish_backlog(port: int, messages: list[tuple[str, bytes]]) -> None:
    def publish(chunk: list[tuple[str, bytes]], index: int) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{index}")
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.loop_start()
        for topic, payload in chunk:
            client.publish(topic, payload, qos=0)
        # The broker handles one connection's packets in order: once this QoS 1
        # message is acknowledged, every message before it has been queued.
        client.publish("bench/sync", b"", qos=1).wait_for_publish(TIMEOUT_S)
        client.disconnect()
        client.loop_stop()

    threads = [
        threading.Thread(target=publish, args=(messages[i::PUBLISHERS], i))
        for i in range(PUBLISHERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT_S)


def _bare_paho_drain(port: int, messages: list[tuple[str, bytes]]) -> float:
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=False)
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(list(contract.CLOUD_SUBSCRIPTIONS))
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()

    _publish_backlog(port, messages)

    count = 0
    done = threading.Event()

    def on_message(*_args: object) -> None:
        nonlocal count
        count += 1
        if count >= len(messages):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=False)
    client.on_message = on_message
    started = time.perf_counter()
    client.connect("127.0.0.1", port)
    client.loop_start()
    finished = done.wait(TIMEOUT_S)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    if not finished:
        raise RuntimeError(f"bare subscriber got {count}/{len(messages)} messages")
    return elapsed


async def _ingest_drain(
    broker: devservers.Mosquitto,
    vm: devservers.VictoriaMetrics,
    messages: list[tuple[str, bytes]],
    workdir: Path,
) -> tuple[float, dict[str, object]]:
    settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{workdir}/bench.sqlite3",
        mqtt_url=broker.url,
        mqtt_client_id="bench-cloud",
        influx_url=vm.url,
    )
    await migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    await apply_layout(engine, bench_layout())

    async def run_ingestor(until: int | None) -> tuple[float, Ingestor]:
        sink = InfluxSink(vm.url)
        ingestor = Ingestor(settings, engine, sink)
        started = time.perf_counter()
        ingestor.start()

        def done() -> bool:
            stats = ingestor.stats
            handled = stats.applied + sum(stats.rejected.values())
            return ingestor.connected and (until is None or handled >= until)

        async with asyncio.timeout(TIMEOUT_S):
            while not done():  # noqa: ASYNC110 - plain counters, nothing to await on
                await asyncio.sleep(0.005)
            await ingestor.flush()
            await sink.flush()
        elapsed = time.perf_counter() - started
        await ingestor.stop()
        await sink.close()
        return elapsed, ingestor

    try:
        await run_ingestor(None)  # creates the persistent session, then goes away
        await asyncio.to_thread(_publish_backlog, broker.port, messages)
        elapsed, ingestor = await run_ingestor(len(messages))
    finally:
        await engine.dispose()
    s = ingestor.stats
    details: dict[str, object] = {
        "applied": s.applied,
        "rejected": sum(s.rejected.values()),
        "telemetry_lines_written": ingestor.sink.stats.written,
        "telemetry_lines_failed": ingestor.sink.stats.failed,
    }
    return elapsed, details


def run(messages: int = 100_000) -> dict[str, object]:
    """Runs both drains on fresh servers; returns msgs/s of each and their ratio."""
    burst = build_messages(messages)
    with (
        devservers.mosquitto(config_extra="queue_qos0_messages true") as broker,
        devservers.victoria_metrics() as vm,
        tempfile.TemporaryDirectory(prefix="ruang-bench-") as tmp,
    ):
        bare_s = _bare_paho_drain(broker.port, burst)
        ingest_s, details = asyncio.run(_ingest_drain(broker, vm, burst, Path(tmp)))
    if details["applied"] != messages or details["telemetry_lines_written"] != messages:
        raise RuntimeError(f"ingestion incomplete: {details}")
    ceiling, ingest = messages / bare_s, messages / ingest_s
    figures: dict[str, object] = {
        "messages": float(messages),
        "ceiling_msgs_per_s": round(ceiling, 1),
        "ingest_msgs_per_s": round(ingest, 1),
        "ratio": round(ingest / ceiling, 3),
        "bare_seconds": round(bare_s, 3),
        "ingest_seconds": round(ingest_s, 3),
    }
    check(figures, "ratio", ">=", TARGET_RATIO)
    return figures


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(json.dumps(run(count), indent=2))
