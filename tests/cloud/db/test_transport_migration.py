"""Migration 0011 builds the transport tables exactly as cloud/db/models_transport.py declares
them (columns, nullability, primary keys), on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

import cloud.db.models_transport as models
from cloud.db.engine import make_engine, migrate

TABLES = [
    m.__table__
    for m in (
        models.Agency, models.Route, models.Stop, models.Calendar, models.CalendarDate,
        models.ShapeVertex, models.Trip, models.StopTime, models.Vehicle, models.SiteStop,
    )
]  # fmt: skip


async def test_the_migrated_transport_tables_match_the_models(database_url: str) -> None:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:

            def describe(sync_conn):  # type: ignore[no-untyped-def]
                insp = inspect(sync_conn)
                return {
                    t.name: (
                        {c["name"]: c["nullable"] for c in insp.get_columns(t.name)},
                        set(insp.get_pk_constraint(t.name)["constrained_columns"]),
                        {u["name"] for u in insp.get_unique_constraints(t.name)},
                    )
                    for t in TABLES
                }

            found = await conn.run_sync(describe)
    finally:
        await engine.dispose()
    for table in TABLES:
        columns, pk, _ = found[table.name]
        # Primary key columns are NOT NULL however the model spells them.
        assert columns == {c.name: bool(c.nullable) and not c.primary_key for c in table.columns}
        assert pk == {c.name for c in table.primary_key.columns}, table.name
    assert "uq_transport_vehicles_node_id" in found["transport_vehicles"][2]
