"""Multi-row INSERTs whose SQL text is the same for any number of rows.

A multi-row INSERT built by SQLAlchemy (`insertmanyvalues`) or an expanded IN list
is a new SQL text for every row count. On PostgreSQL, asyncpg prepares each text
it has not seen on that connection, and the server parses and plans it again;
with the booking writer's batches of 1 to 40 rows, several statements per batch
and a bounded statement cache, that was most batches (docs/performance.md, "What
a booking costs now").

`BulkInsert` sends the rows column-wise instead: on PostgreSQL each column is one
array parameter and `unnest` turns the arrays back into rows in the SELECT list
(several set-returning functions there run in step), so the text never changes.
SQLite has no arrays and no server-side plans to lose; it keeps SQLAlchemy's own
multi-row insert.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Column, Table, Text, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from cloud.db.raw import PgStatement, driver_in_transaction


def _unnested(column: Column[Any]) -> Any:
    """The column's array parameter, unnested. JSON values travel as text and are
    cast back: SQLAlchemy's ARRAY would take a JSON list for another dimension."""
    if isinstance(column.type, JSON):
        parameter = bindparam(f"bulk_{column.name}", type_=postgresql.ARRAY(Text))
        return cast(func.unnest(parameter), column.type).label(column.name)
    parameter = bindparam(f"bulk_{column.name}", type_=postgresql.ARRAY(column.type))
    return func.unnest(parameter).label(column.name)


class BulkInsert:
    """INSERT of many rows into `table`'s `columns`, prepared once per dialect.

    `returning` columns come back one row per inserted row. With `ordered`, they come
    back in the rows' order: on PostgreSQL, by ascending `id`, since the unnested rows
    are inserted in array order and each draws the next value of the id sequence as
    it is inserted; on SQLite, by SQLAlchemy's `sort_by_parameter_order`.
    `skip_conflicts_on` names a unique index's columns whose duplicates are silently
    skipped (ON CONFLICT DO NOTHING; only the rows added come back).
    """

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        returning: Sequence[Column[Any]] = (),
        ordered: bool = False,
        skip_conflicts_on: Sequence[str] = (),
    ) -> None:
        self.columns = tuple(columns)
        self.returning = tuple(returning)
        self.ordered = ordered
        if ordered and "id" not in {c.name for c in returning}:
            raise ValueError("an ordered BulkInsert must return the id column")
        pg: Any = postgresql.insert(table).from_select(
            list(self.columns),
            select(*(_unnested(table.c[name]) for name in self.columns)),
        )
        self._json = frozenset(n for n in self.columns if isinstance(table.c[n].type, JSON))
        lite: Any = sqlite.insert(table)
        if skip_conflicts_on:
            pg = pg.on_conflict_do_nothing(index_elements=[table.c[n] for n in skip_conflicts_on])
            lite = lite.on_conflict_do_nothing(
                index_elements=[table.c[n] for n in skip_conflicts_on]
            )
        if self.returning:
            pg = pg.returning(*self.returning)
            lite = lite.returning(*self.returning, sort_by_parameter_order=ordered)
        self._statements: dict[str, Any] = {"postgresql": pg, "sqlite": lite}
        # Columns left out get their scalar Python default, as SQLAlchemy would add it.
        self._pg = PgStatement(
            pg,
            defaults={
                c.name: c.default.arg
                for c in table.c
                if c.name not in self.columns and isinstance(c.default, ScalarElementColumnDefault)
            },
        )

    async def execute(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Inserts `rows` (each a mapping with every column); the returned rows, read by
        attribute and `_mapping` (on PostgreSQL inside a transaction, straight from
        asyncpg: cloud/db/raw.py)."""
        if not rows:
            return []
        dialect = conn.dialect.name
        statement = self._statements[dialect]
        if dialect == "postgresql":
            arrays = {
                f"bulk_{name}": (
                    [None if row[name] is None else json.dumps(row[name]) for row in rows]
                    if name in self._json
                    else [row[name] for row in rows]
                )
                for name in self.columns
            }
            driver = await driver_in_transaction(conn)
            if driver is not None:
                rows_back: list[Any] = await self._pg.fetch(driver, arrays)
                if self.ordered:
                    rows_back.sort(key=lambda row: row.id)
                return rows_back
            result = await conn.execute(statement, arrays)
        else:
            result = await conn.execute(
                statement, [{name: row[name] for name in self.columns} for row in rows]
            )
        if not self.returning:
            return []
        out = list(result.all())
        if self.ordered and dialect == "postgresql":
            out.sort(key=lambda row: row.id)
        return out
