"""Transport fixtures: a migrated database (a SQLite file or a new PostgreSQL one) as an engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.engine import make_engine, migrate


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()
