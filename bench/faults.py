"""Figures behind the fault tests (tests/faults/): end to end rate, backlog drain, reconnect spread.

`run()` returns figures and prints nothing.

* `e2e_events_per_s`: 10,000 events put by an edge process (an Uplink, group commits
  of 50) through its outbox and a local Mosquitto into the real cloud on SQLite
  (the layout binds the node's desks, so they are stored as check-ins), from the
  edge's first put until the cloud's events table holds all 10,000; then it must
  hold exactly 10,000 (plus the birth) a moment later: stored once each.
  Target (issue 16): >= 5,000 events/s.
* `drain_msgs_per_s_unlimited` / `drain_msgs_per_s_default_rate`: an uplink coming
  back from an outage with a backlog (10,000 messages with the rate limit off; 1,000
  at the default `backlog_default_rate`), from connect until the broker acked it all.
* `reconnect_spread_p50_s` / `_p90_s` / `_max_s`: 200 uplinks in one process, broker
  stopped for 2 s: seconds from the broker being back to each node's reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.targets import check
from cloud.buildings.layout import Layout, apply_layout, parse_layout
from cloud.db.engine import make_engine, migrate
from cloud.settings import CloudSettings
from edge.outbox import Outbox
from edge.settings import EdgeSettings
from edge.uplink import Uplink
from launch import devservers
from launch.webapp import serve
from ruang import contract

REPO = Path(__file__).resolve().parents[1]
TARGET_E2E_EVENTS_PER_S = 5_000.0

_EDGE = """
import asyncio, sys, time
from pathlib import Path
from edge.settings import EdgeSettings
from edge.uplink import Uplink
from ruang import contract

async def main(state_dir: str, url: str, node: str, count: str) -> None:
    settings = EdgeSettings(node_id=node, mqtt_url=url, state_dir=Path(state_dir))

    async def ignore(_: contract.Message) -> None:
        return None

    uplink = Uplink(settings, birth=lambda b: contract.NodeState(node=node, online=True, bdseq=b),
                    on_command=ignore)
    task = asyncio.create_task(uplink.run())
    await uplink.connected.wait()
    print(time.time(), flush=True)
    for start in range(0, int(count), 50):
        for i in range(start, start + 50):
            uplink.publish(contract.CheckIn(node=node, desk=f"D{i % 50:02d}", badge="04A1B2C3"))
        await uplink.outbox.flushed()
        await asyncio.sleep(0)
    while uplink.queued:
        await asyncio.sleep(0.01)
    task.cancel()

asyncio.run(main(*sys.argv[1:]))
"""


def _uplink(settings: EdgeSettings) -> Uplink:
    async def ignore(_: contract.Message) -> None:
        return None

    node = settings.node_id
    return Uplink(
        settings,
        birth=lambda b: contract.NodeState(node=node, online=True, bdseq=b),
        on_command=ignore,
    )


def _rows(db_path: Path, node: str, kind: str | None = None) -> int:
    query = "SELECT count(*) FROM events WHERE node = ?" + (" AND kind = ?" if kind else "")
    with contextlib.closing(sqlite3.connect(db_path, timeout=10)) as db:
        (count,) = db.execute(query, (node, kind) if kind else (node,)).fetchone()
    return int(count)


def _e2e_layout(node: str) -> Layout:
    """One floor whose 50 desks (D00..D49, what the edge process taps) belong to `node`:
    the cloud stores the events as check-ins, not as refusals of an unbound node."""
    desks = [{"id": f"D{i:02d}"} for i in range(50)]
    zone = {"id": "bench-e2e-z", "name": "Z", "desks": desks}
    floor = {"id": "bench-e2e-f", "level": 1, "name": "L1", "node": node, "zones": [zone]}
    return parse_layout(
        {
            "site": {"id": "bench-e2e", "name": "Bench"},
            "buildings": [{"id": "bench-e2e-b", "name": "B", "floors": [floor]}],
        }
    )


async def _end_to_end(workdir: Path, url: str, count: int) -> float:
    node = "bench-e2e"
    db_path = workdir / "cloud.sqlite3"
    database_url = f"sqlite+aiosqlite:///{db_path}"
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        await apply_layout(engine, _e2e_layout(node))
    finally:
        await engine.dispose()
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=url,
        mqtt_client_id="ruang-cloud-bench-faults",
        http_port=devservers.free_port(),
        telemetry_sqlite_path=workdir / "telemetry.sqlite3",
    )
    ready = asyncio.Event()
    cloud = asyncio.create_task(serve(settings, ready=ready))
    edge: asyncio.subprocess.Process | None = None
    try:
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.5)  # the ingestor subscribes right after startup
        edge = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _EDGE, str(workdir / "edge"), url, node, str(count),
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "RUANG_LOG_LEVEL": "ERROR"},
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert edge.stdout is not None
        started = float((await asyncio.wait_for(edge.stdout.readline(), 30)).decode())
        deadline = time.monotonic() + 120
        # Events plus the birth (a state message is stored as an event row too).
        while await asyncio.to_thread(_rows, db_path, node) < count + 1:
            if time.monotonic() > deadline:
                raise TimeoutError("the cloud did not store every event in 120 s")
            await asyncio.sleep(0.02)
        elapsed = time.time() - started
        # Exactly once: no duplicates turn up later (resends are de-duplicated).
        await asyncio.sleep(1.0)
        stored = await asyncio.to_thread(_rows, db_path, node, "checkin")
        if stored != count:
            raise RuntimeError(f"{stored} check-ins stored for {count} sent")
    finally:
        if edge is not None and edge.returncode is None:
            edge.kill()
            await edge.wait()
        cloud.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cloud
    return count / elapsed


async def _drain(workdir: Path, url: str, count: int, rate: float | None) -> float:
    settings = EdgeSettings(
        node_id="bench-drain", mqtt_url=url, state_dir=workdir / f"drain-{rate}"
    )
    box = Outbox.in_dir(settings.state_dir)
    for i in range(count):
        box.put(contract.CheckIn(node="bench-drain", desk=f"D{i % 50:02d}", badge="04A1B2C3"))
    box.close()
    uplink = _uplink(settings)
    uplink.set_backlog_rate(rate)
    task = asyncio.create_task(uplink.run())
    try:
        await asyncio.wait_for(uplink.connected.wait(), 10)
        start = time.perf_counter()
        await asyncio.wait_for(uplink.backlog_drained.wait(), 120)
        elapsed = time.perf_counter() - start
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return count / elapsed


async def _reconnect_spread(workdir: Path, broker: devservers.Mosquitto, nodes: int) -> list[float]:
    uplinks = [
        _uplink(EdgeSettings(node_id=f"bench-storm-{i:03d}", mqtt_url=broker.url,
                             state_dir=workdir / "storm" / str(i)))
        for i in range(nodes)
    ]  # fmt: skip
    tasks = [asyncio.create_task(u.run()) for u in uplinks]
    # 200 nodes each warn on every refused retry: not figures.
    uplink_log = logging.getLogger("edge.uplink")
    level = uplink_log.level
    uplink_log.setLevel(logging.ERROR)
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(u.connected.wait() for u in uplinks))
            broker.stop()
            for _ in range(3000):  # bounded by the timeout above too
                if not any(u.connected.is_set() for u in uplinks):
                    break
                await asyncio.sleep(0.02)
        await asyncio.sleep(2.0)
        back = time.monotonic()
        await asyncio.to_thread(broker.start)

        async def reconnected(u: Uplink) -> float:
            await u.connected.wait()
            return time.monotonic() - back

        async with asyncio.timeout(90):
            return sorted(await asyncio.gather(*(reconnected(u) for u in uplinks)))
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for u in uplinks:
            u.outbox.close()
        uplink_log.setLevel(level)


def run(events: int = 10_000, nodes: int = 200) -> dict[str, object]:
    """Fault-path figures; keys are stable metric names."""
    out: dict[str, object] = {}
    default_rate = EdgeSettings(node_id="x").backlog_default_rate
    with tempfile.TemporaryDirectory(prefix="ruang-bench-faults-") as tmp:
        workdir = Path(tmp)
        with devservers.mosquitto() as broker:
            out["e2e_events_per_s"] = asyncio.run(_end_to_end(workdir, broker.url, events))
            out["drain_msgs_per_s_unlimited"] = asyncio.run(
                _drain(workdir, broker.url, 10_000, None)
            )
            out["drain_msgs_per_s_default_rate"] = asyncio.run(
                _drain(workdir, broker.url, 1_000, default_rate)
            )
            delays = asyncio.run(_reconnect_spread(workdir, broker, nodes))
        out["reconnect_spread_p50_s"] = statistics.median(delays)
        out["reconnect_spread_p90_s"] = delays[int(0.9 * len(delays))]
        out["reconnect_spread_max_s"] = delays[-1]
    check(out, "e2e_events_per_s", ">=", TARGET_E2E_EVENTS_PER_S)
    return out


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:<40} {value:,.2f}" if isinstance(value, float) else f"{key:<40} {value}")
