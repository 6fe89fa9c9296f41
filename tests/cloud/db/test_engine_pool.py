"""The PostgreSQL pool (cloud/db/engine.py): pooled connections the server closed are
replaced at checkout, so no statement runs on a dead connection; the pool keeps the
configured number of connections for concurrent requests."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import text

from cloud.db.engine import make_engine
from launch import devservers
from tests.cloud.conftest import eventually


async def test_connections_the_server_terminated_are_replaced_at_checkout(
    pg_server: devservers.Postgres,
) -> None:
    url = pg_server.create_database(f"ruang_pool_{os.getpid()}")
    engine = make_engine(url, pool_size=4)
    admin = make_engine(url, pool_size=1)
    try:
        gate = asyncio.Event()
        pids: list[int] = []

        async def hold() -> None:
            async with engine.connect() as conn:
                pids.append(int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0))
                await gate.wait()

        holders = [asyncio.create_task(hold()) for _ in range(4)]
        await eventually(_true_when(lambda: len(pids) == 4))
        gate.set()
        await asyncio.gather(*holders)  # four connections back in the pool

        # The server ends them (as a restart or an operator's pg_terminate_backend does).
        async with admin.connect() as conn:
            await conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:p AS int[])) AS pid"),
                {"p": pids},
            )

        async def gone() -> bool:
            # The backend processes themselves, not pg_stat_activity: a backend leaves
            # that view before its process exits and closes the socket, and in between
            # the client holds a connection that is dead but does not know it yet.
            return not any(Path(f"/proc/{pid}").exists() for pid in pids)

        await eventually(gone)
        await asyncio.sleep(0.2)  # lets the loop read the closed sockets' end of file
        # Every checkout gets a live connection: none of these statements fails.
        for _ in range(8):
            async with engine.connect() as conn:
                pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            assert pid not in pids
    finally:
        await engine.dispose()
        await admin.dispose()


async def test_the_pool_holds_the_configured_connections_at_once(
    pg_server: devservers.Postgres,
) -> None:
    url = pg_server.create_database(f"ruang_pool_size_{os.getpid()}")
    engine = make_engine(url, pool_size=12)
    try:
        gate = asyncio.Event()
        pids: set[int] = set()

        async def hold() -> None:
            async with engine.connect() as conn:
                pids.add(int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0))
                await gate.wait()

        holders = [asyncio.create_task(hold()) for _ in range(12)]
        await eventually(_true_when(lambda: len(pids) == 12))
        gate.set()
        await asyncio.gather(*holders)
        assert engine.pool.checkedin() == 12  # kept for the next burst, not closed
    finally:
        await engine.dispose()


def _true_when(predicate: object) -> object:
    async def check() -> bool:
        return bool(predicate())  # type: ignore[operator]

    return check
