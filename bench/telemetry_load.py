"""Background telemetry for benchmarks: contract presence and heartbeats at a steady rate.

Run as its own process (`python -m bench.telemetry_load URL RATE NODES DESKS`) so
that generating the load does not share the measured process's event loop. It
publishes QoS 0 messages from `NODES` nodes x `DESKS` desks (node `load-NNN`,
desk `load-NNN-D`, what `load_floors` binds in a layout), presence and
heartbeat alternating, each with a fresh `ts` so the cloud's clock window
accepts it, paced in 10 ms slices. It prints
one line, "ready", once connected, and runs until stdin closes or it is
terminated.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ruang import contract
from ruang.mqtt_url import parse_broker_url

SLICE_S = 0.01


def load_floors(nodes: int, desks: int) -> list[dict[str, Any]]:
    """Layout floors (one per load node) binding the desks this generator speaks for."""
    return [
        {
            "id": f"load-f{n:03d}",
            "level": 100 + n,
            "name": f"Load {n}",
            "node": f"load-{n:03d}",
            "zones": [
                {
                    "id": f"load-z{n:03d}",
                    "name": "Z",
                    "desks": [{"id": f"load-{n:03d}-{d}"} for d in range(desks)],
                }
            ],
        }
        for n in range(nodes)
    ]


def _topics(nodes: int, desks: int) -> list[tuple[str, str, str, bool]]:
    """(topic, node, desk, is_presence) for every desk, presence and heartbeat alternating."""
    out = []
    for n in range(nodes):
        node = f"load-{n:03d}"
        for d in range(desks):
            desk = f"{node}-{d}"
            out.append((contract.telemetry_topic(node, "presence"), node, desk, True))
            out.append((contract.telemetry_topic(node, "heartbeat"), node, desk, False))
    return out


def publish(url: str, rate: float, nodes: int, desks: int, stop: threading.Event) -> int:
    """Publishes at `rate` msg/s until `stop` is set; returns how many were published."""
    broker = parse_broker_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-load-{time.time_ns()}")
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    topics = _topics(nodes, desks)
    per_slice = rate * SLICE_S
    sent, owed = 0, 0.0
    print("ready", flush=True)
    next_slice = time.monotonic()
    try:
        while not stop.is_set():
            owed += per_slice
            now = time.time()
            while owed >= 1:
                topic, node, desk, presence = topics[sent % len(topics)]
                body: dict[str, object] = {
                    "v": 1,
                    "id": f"ld{sent:014d}",
                    "node": node,
                    "ts": now,
                    "desk": desk,
                }
                if presence:
                    # Each desk's presence flips every ten rounds (every 2 s at 5,000
                    # msg/s): 250 changes/s over 500 desks, a busy building's worst;
                    # the other samples repeat the current value, as sensors do.
                    body["present"] = (sent // (10 * len(topics))) % 2 == 0
                else:
                    body["uptime_s"] = sent
                client.publish(topic, orjson.dumps(body), qos=0)
                sent += 1
                owed -= 1
            next_slice += SLICE_S
            delay = next_slice - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            elif delay < -1.0:
                next_slice = time.monotonic()  # fell far behind (machine busy): do not burst
    finally:
        client.disconnect()
        client.loop_stop()
    return sent


def main(argv: list[str]) -> int:
    url, rate, nodes, desks = argv[0], float(argv[1]), int(argv[2]), int(argv[3])
    stop = threading.Event()

    def watch_stdin() -> None:
        # Runs until stdin closes (the benchmark ends) or the process is terminated.
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    sent = publish(url, rate, nodes, desks, stop)
    print(f"sent {sent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
