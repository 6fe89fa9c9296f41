"""Start-up work every process does before serving: migrations and the building layout.

Alembic upgrades and the layout upsert must not run in two processes at once
(two upgrades would both try to create the same tables). On PostgreSQL the
process first takes a session advisory lock (`MIGRATION_LOCK_KEY`) on a
connection of its own and holds it for the whole step; the others wait for it,
then find the schema at head and upgrade nothing. The lock is freed when the
step ends, or by the server if the process dies in the middle. SQLite has one
process only (cloud/runtime/roles.py) and needs no lock.
"""

from __future__ import annotations

import logging

from cloud.buildings.layout import apply_layout, load_layout
from cloud.db.engine import is_sqlite, make_engine, migrate
from cloud.db.pg_direct import connect
from cloud.runtime.roles import process_name
from cloud.settings import CloudSettings

log = logging.getLogger(__name__)

# "RuangMig" read as 8 ASCII bytes; another key than the jobs leader's.
MIGRATION_LOCK_KEY = int.from_bytes(b"RuangMig", "big")


async def prepare_database(settings: CloudSettings) -> None:
    """Migrates the schema to head and applies the layout file, one process at a time."""
    if is_sqlite(settings.database_url):
        await _prepare(settings)
        return
    conn = await connect(settings.database_url, f"{process_name(settings)}-migrate")
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        await _prepare(settings)
    finally:
        conn.terminate()  # ends the session, which frees the lock


async def _prepare(settings: CloudSettings) -> None:
    await migrate(settings.database_url)
    if settings.layout_file is None:
        return
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        await apply_layout(engine, load_layout(settings.layout_file))
    finally:
        await engine.dispose()
    log.info("building layout applied from %s", settings.layout_file)
