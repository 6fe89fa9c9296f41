"""The aiosqlite driver as the engine uses it: SQLAlchemy's adapter with a terminate
that cannot hang.

When a pooled SQLite connection is invalidated (its user was cancelled mid-statement,
as every request is when the server stops), SQLAlchemy "terminates" it: a graceful
close in a shielded task, and on cancellation a forced stop as well. With aiosqlite
0.22 the two race: the forced stop ends the connection's worker thread, and the
graceful close then waits in its `finally` for a stop that thread will never run.
That task ignores every cancellation, so the event loop's shutdown (`asyncio.run`,
the tests' loop teardown) waits for it forever.

SQLite needs no graceful close: the forced stop closes the sqlite3 connection on its
own thread after whatever was queued before it (an open transaction rolls back), so
terminate is that stop alone.
"""

from __future__ import annotations

from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def terminate(self) -> None:
        self._terminate_force_close()


class _Dbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        adapted.__class__ = _Connection  # same slots: only the terminate differs
        return adapted


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DB-API module to hand `create_async_engine(module=...)` for SQLite URLs."""
    import sqlite3

    return _Dbapi(aiosqlite, sqlite3)
