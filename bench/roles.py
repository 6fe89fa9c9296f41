"""Cloud roles as processes: jobs fail-over time and ingestion with 1 vs 2 ingest workers.

Real `ruang cloud serve --role` processes (launch/cluster.py) on a PostgreSQL and a
Mosquitto of the benchmark's own, on loopback.

- failover_s: from SIGKILL of the jobs leader to the standby answering
  `leader: true` on `GET /role`, median of a few kills (target < 10 s).
- ingest: the workers start, join the shared group and settle; then they are
  paused (SIGSTOP) while a burst of QoS 1 events is queued for the group, and
  resumed together (SIGCONT): events applied per second from the resume until
  every event is a row, with 1 worker, then 2 on a fresh database. Pausing rather
  than starting them keeps start-up out of the timed window, so the figure is the
  drain alone. Beside it, the workers' own CPU per event (user + system time from
  /proc over the drain) and each worker's share of the events: on a 2-core machine
  shared with PostgreSQL and Mosquitto the wall-clock ratio is capped by the cores,
  while the CPU per event says whether a second worker costs more per event (it
  should not) and the shares whether the group splits evenly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiomqtt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.targets import check
from cloud.db.engine import make_engine
from cloud.db.tables import EVENTS
from cloud.settings import CloudSettings
from launch import devservers
from launch.cluster import RoleProcess, RoleProcesses
from ruang import contract

NODE = "ikn-demo-l1"
KILLS = 3
WAIT_S = 120.0
PUBLISH_WINDOW = 10
PUBLISHERS = 4  # so the publishing side is not what the figure measures


def _settings(pg: devservers.Postgres, broker: devservers.Mosquitto, tmp: Path) -> CloudSettings:
    name = f"ruang_bench_roles_{uuid.uuid4().hex[:8]}"
    return CloudSettings(
        database_url=pg.create_database(name),
        mqtt_url=broker.url,
        mqtt_client_id=f"bench-{uuid.uuid4().hex[:6]}",
        auth_dev_key_path=tmp / "dev-key.pem",
        snapshot_key_path=tmp / "snapshot-key.pem",
    )


async def _leader(processes: list[RoleProcess]) -> RoleProcess | None:
    for process in processes:
        if process.proc.returncode is None:
            status = await process.status()
            if status is not None and status["leader"]:
                return process
    return None


async def _failover(pg: devservers.Postgres, broker: devservers.Mosquitto, tmp: Path) -> float:
    cluster = RoleProcesses(_settings(pg, broker, tmp), tmp)
    times: list[float] = []
    try:
        jobs = [await cluster.start("jobs", 0), await cluster.start("jobs", 1)]
        for kill in range(KILLS):
            deadline = time.monotonic() + WAIT_S
            while (leader := await _leader(jobs)) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("no jobs leader")
                await asyncio.sleep(0.05)
            killed_at = time.monotonic()
            leader.kill()
            await leader.proc.wait()
            while (await _leader(jobs)) is None:
                if time.monotonic() > killed_at + WAIT_S:
                    raise RuntimeError("no fail-over")
                await asyncio.sleep(0.05)
            times.append(time.monotonic() - killed_at)
            # The killed slot comes back as the new standby.
            jobs[jobs.index(leader)] = await cluster.start("jobs", leader.worker + 2 * (kill + 1))
    finally:
        await cluster.stop_all()
    return statistics.median(times)


async def _publish(broker: devservers.Mosquitto, events: list[contract.ButtonPressed]) -> None:
    async with aiomqtt.Client(
        devservers.LOOPBACK, broker.port, identifier=f"bench-pub-{uuid.uuid4().hex[:6]}"
    ) as pub:
        for at in range(0, len(events), PUBLISH_WINDOW):  # aiomqtt warns past ~10 in flight
            await asyncio.gather(
                *(
                    pub.publish(contract.topic_for(e), contract.encode(e), qos=1)
                    for e in events[at : at + PUBLISH_WINDOW]
                )
            )


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(EVENTS)) or 0)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _received(process: RoleProcess) -> int:
    status = await process.status()
    return int((status or {}).get("received") or 0)


async def _ingest(
    pg: devservers.Postgres, broker: devservers.Mosquitto, tmp: Path, workers: int, count: int
) -> dict[str, float]:
    """Events applied per second by `workers` ingest workers draining a queued backlog,
    their CPU milliseconds per event, and the smallest worker's share of the events."""
    settings = _settings(pg, broker, tmp)
    cluster = RoleProcesses(settings, tmp)
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        started_workers = [await cluster.start("ingest", worker) for worker in range(workers)]
        await asyncio.sleep(1.0)  # subscribed and idle
        pids = [p.proc.pid for p in started_workers]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            events = [
                contract.ButtonPressed(node=NODE, desk=f"L1-D{1 + i % 9:02d}", button=1)
                for i in range(count)
            ]
            await asyncio.gather(
                *(_publish(broker, events[i::PUBLISHERS]) for i in range(PUBLISHERS))
            )
            cpu_before = sum(_cpu_s(pid) for pid in pids)
            before = await _count(engine)
            started = time.monotonic()
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        deadline = started + WAIT_S
        while (done := await _count(engine)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {count} events landed")
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        cpu = sum(_cpu_s(pid) for pid in pids) - cpu_before
        shares = [await _received(p) for p in started_workers]
        return {
            "events_per_s": (count - before) / elapsed,
            "cpu_ms_per_event": cpu / (count - before) * 1000,
            "smallest_share": min(shares) / max(1, sum(shares)),
        }
    finally:
        await engine.dispose()
        await cluster.stop_all()


def run(count: int = 20_000) -> dict[str, object]:
    with (
        devservers.postgres() as pg,
        tempfile.TemporaryDirectory(prefix="ruang-bench-roles-") as tmp,
    ):
        root = Path(tmp)
        for sub in ("failover", "one", "two"):
            (root / sub).mkdir()
        # A broker per phase: the first phase's stopped worker would otherwise stay in
        # the shared group (its persistent session) and be dealt a third of the next
        # phase's stream (docs/operations.md, "Known limits").
        with devservers.mosquitto() as broker:
            failover = asyncio.run(_failover(pg, broker, root / "failover"))
        with devservers.mosquitto() as broker:
            one = asyncio.run(_ingest(pg, broker, root / "one", 1, count))
        with devservers.mosquitto() as broker:
            two = asyncio.run(_ingest(pg, broker, root / "two", 2, count))
    figures: dict[str, object] = {
        "failover_s": failover,
        "ingest_events_per_s_1_worker": one["events_per_s"],
        "ingest_events_per_s_2_workers": two["events_per_s"],
        "ingest_ratio_2_to_1": two["events_per_s"] / one["events_per_s"],
        "ingest_cpu_ms_per_event_1_worker": one["cpu_ms_per_event"],
        "ingest_cpu_ms_per_event_2_workers": two["cpu_ms_per_event"],
        "ingest_cpu_per_event_ratio_2_to_1": two["cpu_ms_per_event"] / one["cpu_ms_per_event"],
        "ingest_smallest_worker_share_2_workers": two["smallest_share"],
    }
    check(figures, "failover_s", "<", 10.0, " s")
    # A second worker must not make each event dearer (the wall-clock ratio is the cores').
    check(figures, "ingest_cpu_per_event_ratio_2_to_1", "<", 1.25)
    check(figures, "ingest_smallest_worker_share_2_workers", ">=", 0.35)
    return figures
