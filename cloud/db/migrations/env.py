"""Alembic environment: runs revisions on the connection `cloud.db.engine.migrate` passes in.

Started by the `alembic` CLI instead, it opens an async engine itself from the
`sqlalchemy.url` option (or `RUANG_DATABASE_URL`).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from cloud.db import (  # noqa: F401  (their tables join Base.metadata)
    models_access,
    models_admin,
    models_attendance,
    models_fleet,
    models_identity,
    models_notifications,
    models_privacy,
    models_rooms,
    models_scim,
    models_transport,
    models_transport_live,
    models_transport_rides,
    models_transport_seats,
    models_visitors,
)
from cloud.db.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    from cloud.db.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        from cloud.settings import CloudSettings

        url = CloudSettings().database_url
    asyncio.run(_run_with_own_engine(url))


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
_main()
