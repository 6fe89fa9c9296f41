"""Cloud processes of each role on loopback, for the role tests and benchmarks.

`RoleProcesses.start(role, worker)` runs `python -m launch.cli cloud serve --role
<role> --worker <n>` on a free port with the shared settings (database, broker,
keys) in its environment, waits until it answers `GET /role`, and logs its
output to a file in `workdir`. `stop_all` sends SIGTERM (a graceful shutdown)
and, past a bound, SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.settings import CloudSettings
from launch import devservers

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90.0  # the machine may be shared; only a hung start reaches it
STOP_TIMEOUT_S = 30.0


class StartFailed(RuntimeError):
    """A role process exited or never answered; the message ends with its log."""


@dataclass
class RoleProcess:
    role: str
    worker: int
    port: int
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def base(self) -> str:
        return f"http://{devservers.LOOPBACK}:{self.port}"

    async def status(self) -> dict[str, Any] | None:
        """`GET /role`, or None while the process does not answer."""
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(f"{self.base}/role")
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        status: dict[str, Any] = r.json()
        return status

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when a machine dies."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)


@dataclass
class RoleProcesses:
    settings: CloudSettings  # what the processes share (database, broker, keys)
    workdir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
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
        env.update(self.env_extra)
        return env

    async def start(self, role: str, worker: int = 0, port: int | None = None) -> RoleProcess:
        """Starts a process of `role` in slot `worker`, on `port` (a restarted replica
        keeps the one its load balancer knows) or a free one."""
        port = port or devservers.free_port()
        log = self.workdir / f"{role}-{worker}.log"
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "launch.cli", "cloud", "serve", "--role", role,
                "--worker", str(worker), "--port", str(port),
                stdout=out, stderr=asyncio.subprocess.STDOUT, env=self.env(role, worker),
                cwd=REPO,
            )  # fmt: skip
        process = RoleProcess(role, worker, port, proc, log)
        self.running.append(process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while await process.status() is None:
            if proc.returncode is not None or time.monotonic() > deadline:
                process.kill()
                raise StartFailed(f"{role}-{worker} did not start:\n{log.read_text()[-3000:]}")
            await asyncio.sleep(0.2)
        return process

    async def stop(self, process: RoleProcess) -> int:
        """SIGTERM, a graceful stop, as `systemctl stop` sends; its exit code."""
        if process.proc.returncode is None:
            process.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                code = await process.proc.wait()
        except TimeoutError:
            process.kill()
            await process.proc.wait()
            raise
        self.running.remove(process)
        return code

    async def stop_all(self) -> None:
        for process in self.running:
            if process.proc.returncode is None:
                process.proc.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await process.proc.wait()
            except TimeoutError:
                process.kill()
                await process.proc.wait()
        self.running.clear()
