"""The Alembic migrations build the schema on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from cloud.db.engine import alembic_config, make_engine, migrate

# Newer revisions keep arriving; what matters is reaching the newest one.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def _schema(database_url: str) -> tuple[set[str], str, set[str]]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:

            def describe(sync_conn):  # type: ignore[no-untyped-def]
                insp = inspect(sync_conn)
                uniques = {u["name"] for u in insp.get_unique_constraints("events")}
                return set(insp.get_table_names()), uniques

            tables, uniques = await conn.run_sync(describe)
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    finally:
        await engine.dispose()
    return tables, str(version), uniques


async def test_migrate_creates_tables_and_unique_message_id(database_url: str) -> None:
    await migrate(database_url)
    tables, version, uniques = await _schema(database_url)
    assert {"nodes", "desks", "events", "alembic_version"} <= tables
    assert version == HEAD
    assert "uq_events_message_id" in uniques


async def test_migrate_twice_is_a_no_op(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)
    _, version, _ = await _schema(database_url)
    assert version == HEAD
