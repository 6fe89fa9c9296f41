"""Session fixtures: real Mosquitto, VictoriaMetrics and PostgreSQL on free loopback ports.

With CI=true a missing server binary fails the run; on a developer machine the
tests that need it are skipped with the reason, so `make test` is never green
without the servers in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

import pytest

from launch import devservers

T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _start(factory: AbstractContextManager[T]) -> Iterator[T]:
    try:
        server = factory.__enter__()
    except devservers.ServerUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true and a required server is missing: {exc}")
        pytest.skip(f"server missing (would fail with CI=true): {exc}")
    try:
        yield server
    finally:
        factory.__exit__(None, None, None)


@pytest.fixture(scope="session")
def mosquitto_server() -> Iterator[devservers.Mosquitto]:
    yield from _start(devservers.mosquitto())


@pytest.fixture(scope="session")
def victoria() -> Iterator[devservers.VictoriaMetrics]:
    yield from _start(devservers.victoria_metrics())


@pytest.fixture(scope="session")
def pg_server() -> Iterator[devservers.Postgres]:
    yield from _start(devservers.postgres())


_db_counter = 0


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A fresh, empty database of each kind: a SQLite file, or a new PostgreSQL database."""
    global _db_counter
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/ruang.sqlite3"
    pg: devservers.Postgres = request.getfixturevalue("pg_server")
    _db_counter += 1
    return pg.create_database(f"ruang_test_{os.getpid()}_{_db_counter}")
