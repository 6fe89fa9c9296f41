"""Async engine, session factory and schema migration (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, exc, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from cloud.db import sqlite_driver
from ruang.private_files import create_private_file, sqlite_file

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# How long a writer outside the booking store's queue (transport tracking, assignments)
# waits for SQLite's one write lock. 5 s ran out in the demo on a loaded 2-core machine
# (stop events and a trip assignment failed with "database is locked"): waiting is the
# embedded database's way to serialise writers, failing the write is not.
SQLITE_BUSY_TIMEOUT_MS = 15_000
# PostgreSQL pool: enough kept connections that the API's concurrent requests (each
# holds one for its whole transaction) neither queue for the pool nor churn through
# overflow connections, which are closed on return and cost a new connection (with
# its TLS probe) the next time; `RUANG_DB_POOL_SIZE` changes it.
PG_POOL_SIZE = 40
PG_MAX_OVERFLOW = 10


def is_sqlite(database_url: str) -> bool:
    return database_url.startswith("sqlite")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while ingestion writes; busy_timeout makes a reader
    # wait for the writer's lock instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # NORMAL is durable across application crashes in WAL mode, and much cheaper.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuses a pooled PostgreSQL connection the server has closed (restart, terminated
    backend): SQLAlchemy then discards it and checks out another.

    This replaces `pool_pre_ping`, which on asyncpg costs three round trips (BEGIN, an
    empty query, ROLLBACK) on every checkout; asyncpg already notices the server
    closing the socket, so looking at that is free. A connection that dies silently
    mid-flight still fails its statement, and SQLAlchemy then invalidates the pool.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def make_engine(database_url: str, *, pool_size: int = PG_POOL_SIZE) -> AsyncEngine:
    """The app's engine; `pool_size` is PostgreSQL's (RUANG_DB_POOL_SIZE)."""
    # People's names and NIPs live here: SQLite creates a missing file with the
    # umask's mode (world-readable), so it is created 0600 first.
    path = sqlite_file(database_url)
    if path is not None:
        create_private_file(path)
    if is_sqlite(database_url):
        # SQLAlchemy's default pool: no booking holds a connection while it waits for
        # the write lock (cloud/bookings/store.py), so a few connections suffice.
        engine = create_async_engine(database_url, module=sqlite_driver.dbapi())
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=PG_MAX_OVERFLOW)
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    return engine


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: API handlers read attributes after the session closed.
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    # env.py runs the migrations on this connection instead of opening its own.
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(database_url: str) -> None:
    """Brings the schema of `database_url` to the newest revision."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers a trivial query."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
