"""Cloud roles as processes: jobs fail-over time and ingestion with 1 vs 2 ingest workers.

Real `ruang cloud serve --role` processes (launch/cluster.py) on a PostgreSQL and a
Mosquitto of the benchmark's own, on loopback.

- failover_s: from SIGKILL of the jobs leader to the standby answering
  `leader: true` on `GET /role`, median of a few kills (target < 10 s).
- ingest: a burst of QoS 1 events queued by the broker for the ingest workers'
  persistent sessions while they are stopped, then drained: events applied per
  second from when every worker answers until every event is a row; with 1
  worker, then 2 on a fresh database. The ratio is reported without a target:
  on a 2-core machine shared with PostgreSQL and Mosquitto, a second worker
  mostly competes for the same cores.
"""

from __future__ import annotations

import asyncio
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


async def _ingest(
    pg: devservers.Postgres, broker: devservers.Mosquitto, tmp: Path, workers: int, count: int
) -> float:
    """Events applied per second by `workers` ingest workers draining a queued backlog."""
    settings = _settings(pg, broker, tmp)
    cluster = RoleProcesses(settings, tmp)
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        # Each worker joins the shared group with its persistent session, then stops:
        # the broker queues the burst for the group, as for workers back from an outage.
        for worker in range(workers):
            await cluster.start("ingest", worker)
        await cluster.stop_all()
        events = [
            contract.ButtonPressed(node=NODE, desk=f"L1-D{1 + i % 9:02d}", button=1)
            for i in range(count)
        ]
        await asyncio.gather(*(_publish(broker, events[i::PUBLISHERS]) for i in range(PUBLISHERS)))
        await asyncio.gather(*(cluster.start("ingest", worker) for worker in range(workers)))
        # Timed from when every worker answers; what they drained while starting is left out.
        started, before = time.monotonic(), await _count(engine)
        deadline = started + WAIT_S
        while (done := await _count(engine)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {count} events landed")
            await asyncio.sleep(0.05)
        if count - before < count // 4:
            raise RuntimeError("the backlog was drained before timing began; raise the count")
        return (count - before) / (time.monotonic() - started)
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
        "ingest_events_per_s_1_worker": one,
        "ingest_events_per_s_2_workers": two,
        "ingest_ratio_2_to_1": two / one,
    }
    check(figures, "failover_s", "<", 10.0, " s")
    return figures
