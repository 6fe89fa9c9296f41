"""Benchmark: events stored exactly once per second, from QoS 1 publishes into the ingestion.

Method (backlog drain, like bench/ingest.py): the cloud `Ingestor` connects once
to create its persistent session and goes away; paho publishers then put
`events` contract CheckIn/CheckOut events (QoS 1, every desk alternating in then
out, unregistered badges, so no booking changes) interleaved with one Presence
sample (QoS 0) per four events, from 200 nodes x 5 desks bound by the layout,
into real Mosquitto, which queues them for the session. The clock starts when
the ingestion connects again and stops when it has applied every message and
flushed; then the `events` table must hold exactly one row per event
(`events_stored` == `events`), else the run fails.

`events_per_s` is printed beside its target; below it the suite reports FAIL
(`python -m bench events` exits non-zero).
Run: `python -m bench events` (SQLite, the embedded default) or
`python -m bench.events [N] [postgres]` (prints JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from bench.ingest import bench_layout
from bench.targets import check, failures
from cloud.buildings.layout import apply_layout
from cloud.db.engine import make_engine, migrate
from cloud.db.tables import EVENTS
from cloud.ingest.pipeline import Ingestor
from cloud.settings import CloudSettings
from cloud.telemetry.sinks import LocalSqliteSink
from launch import devservers
from ruang import contract

TARGET_EVENTS_PER_S = 5_000.0
PUBLISHERS = 4
NODES, DESKS_PER_NODE = 200, 5
TIMEOUT_S = 180.0


def build_messages(events: int) -> list[tuple[str, bytes, int]]:
    """(topic, payload, qos): `events` CheckIn/CheckOut events and a Presence per four."""
    start = time.time()
    out: list[tuple[str, bytes, int]] = []
    desks = NODES * DESKS_PER_NODE
    for i in range(events):
        n, d = (i // DESKS_PER_NODE) % NODES, i % DESKS_PER_NODE
        node, desk = f"node-{n:03d}", f"desk-{n:03d}-{d}"
        ts = start + i * 1e-4
        body: dict[str, object] = {"v": 1, "id": f"ev{i:012d}", "node": node, "ts": ts}
        body["desk"] = desk
        if (i // desks) % 2 == 0:
            kind = "checkin"
            body["badge"] = f"{n:04X}{d:04X}"
        else:
            kind = "checkout"
        out.append((contract.event_topic(node, kind), orjson.dumps(body), 1))
        if i % 4 == 3:
            sample = {"v": 1, "id": f"pr{i:012d}", "node": node, "ts": ts, "desk": desk}
            sample["present"] = kind == "checkin"
            out.append((contract.telemetry_topic(node, "presence"), orjson.dumps(sample), 0))
    # What a real edge sends: check a sample against the contract.
    for topic, payload, _ in out[:: max(1, len(out) // 50)]:
        contract.decode(topic, payload)
    return out


def _publish_backlog(port: int, messages: list[tuple[str, bytes, int]]) -> None:
    def publish(chunk: list[tuple[str, bytes, int]], index: int) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-ev-pub-{index}")
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.loop_start()
        last = None
        for topic, payload, qos in chunk:
            info = client.publish(topic, payload, qos=qos)
            if qos:
                last = info
        # One connection's packets are handled in order: the last QoS 1 publish
        # acknowledged means every one before it is queued for the cloud's session.
        if last is not None:
            last.wait_for_publish(TIMEOUT_S)
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


async def _drain(
    database_url: str, broker: devservers.Mosquitto, messages: list[tuple[str, bytes, int]]
) -> tuple[float, int]:
    """Seconds to apply the backlog, and rows in `events` afterwards."""
    with tempfile.TemporaryDirectory(prefix="ruang-bench-events-") as tmp:
        settings = CloudSettings(
            database_url=database_url, mqtt_url=broker.url, mqtt_client_id="bench-events-cloud"
        )
        await migrate(database_url)
        engine = make_engine(database_url)
        await apply_layout(engine, bench_layout(NODES, DESKS_PER_NODE))

        async def run_ingestor(until: int | None) -> float:
            sink = LocalSqliteSink(Path(tmp) / "telemetry.sqlite3")
            ingestor = Ingestor(settings, engine, sink)
            started = time.perf_counter()
            ingestor.start()

            def done() -> bool:
                s = ingestor.stats
                handled = s.applied + s.duplicates + sum(s.rejected.values())
                return ingestor.connected and (until is None or handled >= until)

            try:
                async with asyncio.timeout(TIMEOUT_S):
                    while not done():  # noqa: ASYNC110 - plain counters, nothing to await on
                        await asyncio.sleep(0.005)
                    await ingestor.flush()
                return time.perf_counter() - started
            finally:
                await ingestor.stop()
                await sink.close()

        try:
            await run_ingestor(None)  # creates the persistent session, then goes away
            await asyncio.to_thread(_publish_backlog, broker.port, messages)
            elapsed = await run_ingestor(len(messages))
            async with engine.connect() as conn:
                stored = int(await conn.scalar(select(func.count()).select_from(EVENTS)) or 0)
        finally:
            await engine.dispose()
    return elapsed, stored


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str]:
    if kind == "postgres":
        with devservers.postgres() as pg:
            yield pg.url
    else:
        with tempfile.TemporaryDirectory(prefix="ruang-bench-events-db-") as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/cloud.sqlite3"


def run(events: int = 20_000, database: str = "sqlite") -> dict[str, object]:
    """Drains `events` events (plus presence) into the ingestion; the figure and its verdict."""
    messages = build_messages(events)
    with (
        devservers.mosquitto(config_extra="queue_qos0_messages true") as broker,
        _database(database) as url,
    ):
        elapsed, stored = asyncio.run(_drain(url, broker, messages))
    if stored != events:
        raise RuntimeError(f"events stored {stored} != events published {events}")
    rate = events / elapsed
    figures: dict[str, object] = {
        "database": database,
        "events": events,
        "events_stored": stored,
        "seconds": round(elapsed, 3),
        "events_per_s": round(rate, 1),
    }
    check(figures, "events_per_s", ">=", TARGET_EVENTS_PER_S)
    return figures


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    db = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
    figures = run(count, db)
    print(json.dumps(figures, indent=2))
    sys.exit(1 if failures(figures) else 0)
