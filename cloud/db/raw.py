"""Core statements compiled once and run on the asyncpg connection under a transaction.

SQLAlchemy's execution path (compile-cache lookup, parameter and result
processing, a greenlet switch each way) costs about 0.17 ms of CPU a statement
on top of asyncpg's own, measured on this machine (docs/performance.md); the
booking writer's batches run seven statements, one after another, with the
server's event loop waiting. `PgStatement` keeps the statement a SQLAlchemy Core
construct (one definition, still checked against the tables) but compiles it once
for asyncpg and sends it on the driver connection of an `AsyncConnection` whose
transaction SQLAlchemy has already begun, so commit, rollback and the pool stay
SQLAlchemy's. Used only on hot PostgreSQL paths; everything else stays on
SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]


class RecordRow:
    """An asyncpg record read like a SQLAlchemy row: `row.name` and `row._mapping`."""

    __slots__ = ("_mapping",)

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._mapping = dict(record.items())

    def __iter__(self) -> Iterator[Any]:  # unpacks like a row: the values in column order
        return iter(self._mapping.values())

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


async def driver_in_transaction(conn: AsyncConnection) -> Any | None:
    """The asyncpg connection under `conn` when its transaction is open on the server;
    None on another database, or before the first statement (SQLAlchemy opens the
    driver's transaction lazily): the caller then goes through SQLAlchemy."""
    if conn.dialect.name != "postgresql":
        return None
    fairy = await conn.get_raw_connection()
    driver = fairy.driver_connection
    if driver is None or not driver.is_in_transaction():
        return None
    return driver


class PgStatement:
    """`statement` compiled once for asyncpg; `fetch` binds parameters by name.

    `defaults` supplies parameters SQLAlchemy would fill in itself (a column's scalar
    Python default in an INSERT ... SELECT).
    """

    def __init__(self, statement: Any, defaults: Mapping[str, Any] | None = None) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.defaults = dict(defaults or {})
        missing = [n for n in self.names if n not in self.defaults and compiled.binds[n].callable]
        if missing:
            raise ValueError(f"parameters computed at execution time: {missing}")
        for name in self.names:
            bind = compiled.binds[name]
            if name not in self.defaults and bind.value is not None:
                self.defaults[name] = bind.value

    async def fetch(self, driver: Any, params: Mapping[str, Any]) -> list[RecordRow]:
        args = [params[n] if n in params else self.defaults[n] for n in self.names]
        try:
            records = await driver.fetch(self.sql, *args)
        except asyncpg.PostgresError as exc:
            raise _as_sqlalchemy(self.sql, exc) from exc
        return [RecordRow(record) for record in records]


def _as_sqlalchemy(sql: str, exc: asyncpg.PostgresError) -> DBAPIError:
    """The server's refusal as SQLAlchemy would have raised it, so that callers catching
    IntegrityError (a booking overlap -> 409) or reading the SQLSTATE see no difference."""
    code = str(getattr(exc, "sqlstate", "") or "")
    kind: type[DBAPIError] = DBAPIError
    if code.startswith("23"):
        kind = IntegrityError
    elif code.startswith(("40", "53", "55", "57")):
        kind = OperationalError
    elif code.startswith("22"):
        kind = DataError
    elif code.startswith("42"):
        kind = ProgrammingError
    return kind(sql, None, exc)
