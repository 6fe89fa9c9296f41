"""Cloud processes of each role, started for real (launch/cluster.py).

Each test gets a fresh PostgreSQL database and a broker of its own (the ingest
workers' shared-subscription group must not meet another test's workers), and
starts the processes it needs with `roles.start(role, worker)`. Each process logs
to a file in the test's tmp dir; a failed start fails the test with that log.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cloud.settings import CloudSettings
from launch import devservers
from launch.cluster import RoleProcess, RoleProcesses, StartFailed


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


class Roles(RoleProcesses):
    """Role processes whose failed start fails the test (with the process's log)."""

    async def start(self, role: str, worker: int = 0, port: int | None = None) -> RoleProcess:
        try:
            return await super().start(role, worker, port)
        except StartFailed as exc:
            pytest.fail(str(exc))


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
    processes = Roles(settings, tmp_path)
    try:
        yield processes
    finally:
        with contextlib.suppress(Exception):
            await processes.stop_all()
