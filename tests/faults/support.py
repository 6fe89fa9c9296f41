"""Shared pieces of the fault tests: a real cloud, an edge child process, a subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from cloud.db.engine import make_engine
from cloud.settings import CloudSettings
from launch import devservers
from launch.webapp import serve
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.helpers import auth_headers, eventually

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cloud:
    client: httpx.AsyncClient
    db_path: Path

    def event_rows(self, node: str) -> tuple[int, int, set[str]]:
        """(rows, distinct message ids, the ids) of `node`'s check-ins and button presses."""
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=10)) as db:
            found = db.execute(
                "SELECT message_id FROM events WHERE node = ? AND kind IN ('checkin', 'button')",
                (node,),
            ).fetchall()
        ids = [r[0] for r in found]
        return len(ids), len(set(ids)), set(ids)

    async def rows(self, node: str) -> int:
        return (await asyncio.to_thread(self.event_rows, node))[0]

    async def ingest_stats(self) -> dict[str, Any]:
        response = await self.client.get("/api/v1/ingest/stats")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def running_cloud(
    tmp_path: Path, mqtt_url: str, edge_nodes: Sequence[str] = ()
) -> AsyncIterator[Cloud]:
    """The real cloud (uvicorn + ingestion, persistent MQTT session) on a SQLite file.

    `edge_nodes` get the desks edge_child.py names (D00..D49) in a layout: the
    cloud refuses events for desks a node is not bound to.
    """
    db_path = tmp_path / "cloud.sqlite3"
    settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{db_path}",
        mqtt_url=mqtt_url,
        mqtt_client_id=f"ruang-cloud-{tmp_path.name}",
        http_port=devservers.free_port(),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
    )
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=ready))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        engine = make_engine(settings.database_url)
        try:
            for node in edge_nodes:
                await bind(engine, node, [f"D{i:02d}" for i in range(50)])
        finally:
            await engine.dispose()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}", headers=auth_headers(settings)
        ) as client:
            cloud = Cloud(client, db_path)
            # Subscribed (persistent session in place) before any edge publishes.

            async def connected() -> bool:
                return bool((await cloud.ingest_stats())["connected"])

            await eventually(connected, timeout=30, what="cloud subscribed to the broker")
            yield cloud
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def stored_exactly_once(
    cloud: Cloud, node: str, durable: list[str], total: int
) -> dict[str, Any]:
    """Waits until the cloud holds the `total` events the edge reported durable, each
    once, and has counted everything it received; returns its ingest stats.

    Whatever the broker handed over twice is recognised as a duplicate and dropped:
    once the cloud has worked through what it received (redeliveries may still be in
    its queue), received = applied + duplicates + stale deaths exactly.
    """
    progress: list[object] = []

    async def all_stored() -> bool:
        progress[:] = [await cloud.rows(node), await cloud.ingest_stats()]
        return progress[0] == total

    try:
        await eventually(all_stored, timeout=150, what=f"{total} events in the cloud")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; rows and ingest stats: {progress}") from None

    async def counted() -> dict[str, Any]:
        s = await cloud.ingest_stats()
        done = s["received"] == s["applied"] + s["duplicates"] + s["stale_deaths"]
        return s if done else {}

    stats: dict[str, Any] = await eventually(
        counted, timeout=150, what="every received message counted"
    )
    rows, distinct, ids = cloud.event_rows(node)
    assert rows == distinct == total
    assert ids == set(durable)
    return stats


class EdgeChild:
    """`python -m tests.faults.edge_child` (see there); collects the ids it reports durable."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.durable: list[str] = []
        self.written = False
        self.drained = False

    @classmethod
    async def start(
        cls, state_dir: Path, url: str, node: str, prefix: str, count: int, pause: float = 0.002
    ) -> EdgeChild:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.faults.edge_child",
            str(state_dir), url, node, prefix, str(count), str(pause),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "RUANG_LOG_LEVEL": "ERROR"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return cls(proc)

    def _take(self, line: bytes) -> None:
        words = line.decode().split()
        if words == ["WRITTEN"]:
            self.written = True
        elif words == ["DRAINED"]:
            self.drained = True
        elif line.endswith(b"\n"):  # a line cut by a kill was never a promise
            self.durable.extend(words)

    async def read_until(
        self,
        *,
        durable: int | None = None,
        drained: bool = False,
        timeout: float = 60,  # noqa: ASYNC109 - bounded wait
    ) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while not (
                (durable is not None and len(self.durable) >= durable) or (drained and self.drained)
            ):
                line = await self.proc.stdout.readline()
                assert line, f"edge child exited early ({await self.proc.wait()})"
                self._take(line)

    async def kill(self) -> None:
        """SIGKILL; ids already in the pipe were printed after their commit: they count."""
        assert self.proc.stdout is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        rest = await self.proc.stdout.read()
        await self.proc.wait()
        for line in rest.splitlines(keepends=True):
            self._take(line)

    async def finish(self) -> None:
        if self.proc.returncode is None:
            await self.kill()


class Collector:
    """A cloud-like subscriber to one node (persistent session, QoS 1), riding out restarts."""

    def __init__(self, port: int, node: str) -> None:
        self.port = port
        self.node = node
        self.ids: list[str] = []
        self.seen: list[tuple[str, str, str]] = []  # (channel, kind, message id), as received
        self.ready = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", self.port, identifier=f"collector-{self.node}",
                    clean_session=False, protocol=aiomqtt.ProtocolVersion.V311,
                ) as client:  # fmt: skip
                    for channel in ("events", "telemetry", "backlog"):
                        await client.subscribe(
                            f"{contract.TOPIC_ROOT}/nodes/{self.node}/{channel}/+", qos=1
                        )
                    self.ready.set()
                    async for msg in client.messages:
                        payload = msg.payload if isinstance(msg.payload, bytes) else b""
                        parsed, message = contract.decode(str(msg.topic), payload)
                        self.ids.append(message.id)
                        self.seen.append((parsed.channel, parsed.kind, message.id))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def background(coro: Coroutine[Any, Any, object]) -> AsyncIterator[asyncio.Task[object]]:
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
