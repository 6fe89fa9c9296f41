"""Cloud processes of each role, started for real: `python -m launch.cli cloud serve --role`.

Each test gets a fresh PostgreSQL database and a broker of its own (the ingest
workers' shared-subscription group must not meet another test's workers), and
starts the processes it needs with `RoleProcesses.start`. Each process logs to
a file in the test's tmp dir; a test failing shows where to look.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.settings import CloudSettings
from launch import devservers

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 90.0  # the machine is shared; only a hung start reaches it


@pytest.fixture
def role_broker(tmp_path: Path) -> Iterator[devservers.Mosquitto]:
    broker = devservers.Mosquitto(port=devservers.free_port(), workdir=tmp_path / "broker")
    broker.workdir.mkdir()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def pg_url(pg_server: devservers.Postgres) -> str:
    return pg_server.create_database(f"ruang_roles_{os.getpid()}_{uuid.uuid4().hex[:8]}")


@dataclass
class RoleProcess:
    role: str
    worker: int
    port: int
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def status(self) -> dict[str, Any] | None:
        """`GET /role`, or None while the process does not answer."""
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(f"{self.base}/role")
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when a machine dies."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)


@dataclass
class RoleProcesses:
    settings: CloudSettings  # what the processes share (database, broker, keys)
    workdir: Path
    running: list[RoleProcess] = field(default_factory=list)

    def env(self, role: str, worker: int) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update(
            RUANG_DATABASE_URL=s.database_url,
            RUANG_MQTT_URL=s.mqtt_url,
            RUANG_MQTT_CLIENT_ID=s.mqtt_client_id,
            RUANG_AUTH_DEV_KEY_PATH=str(s.auth_dev_key_path),
            RUANG_SNAPSHOT_KEY_PATH=str(s.snapshot_key_path),
            RUANG_TELEMETRY_SQLITE_PATH=str(self.workdir / f"telemetry-{role}-{worker}.sqlite3"),
            RUANG_LAYOUT_FILE=str(SAMPLE_LAYOUT),
            RUANG_FLUSH_INTERVAL_S="0.05",
            RUANG_DB_POOL_SIZE="5",
        )
        return env

    async def start(self, role: str, worker: int = 0) -> RoleProcess:
        port = devservers.free_port()
        log = self.workdir / f"{role}-{worker}.log"
        out = log.open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "launch.cli", "cloud", "serve", "--role", role,
            "--worker", str(worker), "--port", str(port),
            stdout=out, stderr=asyncio.subprocess.STDOUT, env=self.env(role, worker), cwd=REPO,
        )  # fmt: skip
        out.close()
        process = RoleProcess(role, worker, port, proc, log)
        self.running.append(process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while await process.status() is None:
            if proc.returncode is not None or time.monotonic() > deadline:
                pytest.fail(f"{role}-{worker} did not start:\n{log.read_text()[-3000:]}")
            await asyncio.sleep(0.2)
        return process

    async def stop_all(self) -> None:
        for process in self.running:
            if process.proc.returncode is None:
                process.proc.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                async with asyncio.timeout(30):
                    await process.proc.wait()
            except TimeoutError:
                process.kill()
                await process.proc.wait()


@pytest.fixture
async def roles(
    pg_url: str, role_broker: devservers.Mosquitto, tmp_path: Path
) -> AsyncIterator[RoleProcesses]:
    settings = CloudSettings(
        database_url=pg_url,
        mqtt_url=role_broker.url,
        mqtt_client_id=f"ruang-roles-{uuid.uuid4().hex[:6]}",
        auth_dev_key_path=tmp_path / "dev-key.pem",
        snapshot_key_path=tmp_path / "snapshot-key.pem",
    )
    processes = RoleProcesses(settings, tmp_path)
    try:
        yield processes
    finally:
        with contextlib.suppress(Exception):
            await processes.stop_all()
