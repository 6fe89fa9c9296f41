"""Direct PostgreSQL connections outside SQLAlchemy's pool, for session-bound features.

Leader election (cloud/jobs/leader.py) holds an advisory lock for as long as its
connection lives, and the signal bus (cloud/runtime/pgbus.py) LISTENs on one:
both need a connection of their own that no pool hands to anyone else, and
that, when the process dies, dies with it (the server then frees the lock).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

CONNECT_TIMEOUT_S = 5.0


def pg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg takes, from the app's SQLAlchemy URL."""
    url = make_url(database_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(database_url: str, application_name: str) -> Any:
    """A new asyncpg connection named `application_name` (seen in pg_stat_activity)."""
    return await asyncpg.connect(
        pg_dsn(database_url),
        timeout=CONNECT_TIMEOUT_S,
        server_settings={"application_name": application_name[:63]},
    )
