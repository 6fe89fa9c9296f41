"""Session fixtures: real Mosquitto, VictoriaMetrics and PostgreSQL on free loopback ports.

With CI=true a missing server binary fails the run; on a developer machine the
tests that need it are skipped with the reason, so `make test` is never green
without the servers in CI.
"""

from __future__ import annotations

import asyncio
import asyncio.runners
import io
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

import pytest

from launch import devservers

T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# How long the test loop's teardown waits for the tasks a test left running to
# finish after they were cancelled.
CANCELLED_TASKS_GRACE_S = 20.0


class TaskIgnoredCancellation(Exception):
    """A task a test left running did not end when the test's event loop was closed."""


def _cancel_all_tasks_naming_the_stuck(loop: asyncio.AbstractEventLoop) -> None:
    """asyncio.Runner's teardown, bounded: a task that survives its cancellation is
    named with its stack instead of hanging the worker until pytest-timeout, whose
    report shows only the runner waiting (how such hangs used to look in CI)."""
    to_cancel = asyncio.all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    _, pending = loop.run_until_complete(asyncio.wait(to_cancel, timeout=CANCELLED_TASKS_GRACE_S))
    for task in to_cancel - pending:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during the test loop's shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
    if pending:
        stacks = io.StringIO()
        for task in pending:
            task.print_stack(file=stacks)
        raise TaskIgnoredCancellation(
            f"{len(pending)} task(s) still running {CANCELLED_TASKS_GRACE_S:g} s after "
            f"the test's loop cancelled them:\n{stacks.getvalue()}"
        )


# pytest-asyncio closes each test's loop through asyncio.Runner, which calls this.
asyncio.runners._cancel_all_tasks = _cancel_all_tasks_naming_the_stuck  # type: ignore[attr-defined]


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


@pytest.fixture
def haproxy_binary() -> str:
    """Debian's HAProxy (the load balancer tests start their own from it)."""
    try:
        return devservers.find_binary("haproxy")
    except devservers.ServerUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true and a required server is missing: {exc}")
        pytest.skip(f"server missing (would fail with CI=true): {exc}")


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
