"""The reference systemd units (deploy/systemd/, deploy/ruang-edge.service) are tested, not
just written: systemd itself checks every unit, and each cloud unit's own ExecStart runs
against real PostgreSQL and Mosquitto with the example environment file in production
mode, and serves its role."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from launch import devservers
from tests.conftest import IN_CI

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
INSTALLED = "/opt/ruang/bin/ruang"
RUANG = str(Path(sys.executable).with_name("ruang"))
ENV_FILE = "/etc/ruang/cloud.env"
KEYS_DIR = "/etc/ruang/keys"


def _unit_files() -> list[Path]:
    return [*sorted(UNITS.glob("*.service")), REPO / "deploy" / "ruang-edge.service"]


def _as_here(text: str) -> str:
    """A unit as installed on this machine: the venv's `ruang`, the example env file."""
    return text.replace(INSTALLED, RUANG).replace(ENV_FILE, str(UNITS / "cloud.env.example"))


def _directive(unit: Path, key: str) -> str:
    lines = [ln for ln in unit.read_text().splitlines() if ln.startswith(f"{key}=")]
    assert len(lines) == 1, f"{unit.name}: expected one {key}="
    return lines[0].split("=", 1)[1]


def test_systemd_accepts_every_unit_without_a_warning(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if IN_CI:
            pytest.fail("CI=true and systemd-analyze is missing (Debian package systemd)")
        pytest.skip("systemd-analyze missing (would fail with CI=true)")
    names = []
    for unit in _unit_files():
        text = _as_here(unit.read_text())
        # A template is checked as an instance of itself (ruang-api@8001.service).
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / unit.name).write_text(text)
        (tmp_path / name).write_text(text)
        names.append(name)
    # The edge unit's config file is the technician's; the checker only needs it to exist.
    out = subprocess.run(
        [analyze, "verify", *names],
        cwd=tmp_path,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    # Unknown or misspelt directives are only warnings to systemd: none allowed here.
    assert out.stderr.strip() == "" and out.stdout.strip() == "", out.stderr + out.stdout


async def _environment(tmp_path: Path, pg_url: str, broker: str, tsdb: str) -> dict[str, str]:
    keys = tmp_path / "keys"
    generating = await asyncio.create_subprocess_exec(
        RUANG, "keys", "generate", "--dir", str(keys), stdout=asyncio.subprocess.DEVNULL
    )
    assert await generating.wait() == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUANG_")}
    for line in (UNITS / "cloud.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value.replace(KEYS_DIR, str(keys))
    env.update(
        RUANG_DATABASE_URL=pg_url,
        RUANG_MQTT_URL=broker,
        RUANG_INFLUX_URL=tsdb,
        RUANG_MQTT_CLIENT_ID=f"systemd-units-{tmp_path.name[-8:]}",
    )
    return env


def _exec_start(unit: str, instance: str, port: int) -> list[str]:
    argv = shlex.split(_as_here(_directive(UNITS / unit, "ExecStart")).replace("%i", instance))
    if "--port" in argv:  # the unit's fixed port becomes a free loopback one here
        argv[argv.index("--port") + 1] = str(port)
    else:
        argv += ["--port", str(port)]
    return argv


async def _serves_role(proc: asyncio.subprocess.Process, port: int, role: str) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(900):  # bounds a hung start only
            assert proc.returncode is None, f"{role} exited with {proc.returncode}"
            try:
                r = await http.get(f"http://127.0.0.1:{port}/role")
                if r.status_code == 200:
                    assert r.json()["role"] == role, r.text
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"{role} never answered /role")


async def test_each_cloud_units_exec_start_serves_its_role_in_production(
    tmp_path: Path,
    pg_server: devservers.Postgres,
    mosquitto_server: devservers.Mosquitto,
    victoria: devservers.VictoriaMetrics,
) -> None:
    url = pg_server.create_database(f"ruang_units_{os.getpid()}")
    env = await _environment(tmp_path, url, mosquitto_server.url, victoria.url)
    migrate = shlex.split(_as_here(_directive(UNITS / "ruang-migrate.service", "ExecStart")))
    migrating = await asyncio.create_subprocess_exec(
        *migrate, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(migrating.communicate(), timeout=300)
    assert migrating.returncode == 0, out.decode()

    started: list[tuple[asyncio.subprocess.Process, int, str]] = []
    try:
        for unit, instance, role in (
            ("ruang-api@.service", "8001", "api"),
            ("ruang-ingest@.service", "0", "ingest"),
            ("ruang-jobs@.service", "0", "jobs"),
        ):
            port = devservers.free_port()
            log = (tmp_path / f"{role}.log").open("wb")
            proc = await asyncio.create_subprocess_exec(
                *_exec_start(unit, instance, port), env=env, stdout=log, stderr=log
            )
            started.append((proc, port, role))
        for proc, port, role in started:
            await _serves_role(proc, port, role)
    finally:
        for proc, _, _ in started:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _, role in started:
            try:
                code = await asyncio.wait_for(proc.wait(), timeout=45)  # TimeoutStopSec
            except TimeoutError:
                proc.kill()
                await proc.wait()
                pytest.fail(f"{role} did not stop on SIGTERM within the unit's TimeoutStopSec")
            assert code == 0, (
                f"{role} exited {code} on SIGTERM:\n"
                + (tmp_path / f"{role}.log").read_text()[-3000:]
            )
