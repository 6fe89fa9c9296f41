"""Multi-row inserts with one SQL text (cloud/db/bulk.py) and the asyncpg fast path
(cloud/db/raw.py), on both databases: rows come back in the order given, JSON values
survive (an empty list is a value, not an array dimension), duplicates are skipped
where asked, and a refusal by the database is SQLAlchemy's IntegrityError either way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from cloud.db.bulk import BulkInsert
from cloud.db.engine import make_engine, migrate
from cloud.db.raw import driver_in_transaction
from cloud.db.tables import NOTIFICATIONS

_COLUMNS = ("person_id", "address", "language", "kind", "data", "attachments", "dedup_key",
            "created_at")  # fmt: skip
ORDERED = BulkInsert(
    NOTIFICATIONS,
    _COLUMNS,
    returning=(NOTIFICATIONS.c.id, NOTIFICATIONS.c.dedup_key),
    ordered=True,
    skip_conflicts_on=("dedup_key",),
)


def _row(key: str, data: Any, person: str | None = None) -> dict[str, Any]:
    return {
        "person_id": person,
        "address": f"{key}@example.test",
        "language": "id",
        "kind": "booking_confirmed",
        "data": data,
        "attachments": [],
        "dedup_key": key,
        "created_at": datetime(2026, 12, 7, 8, 0, tzinfo=UTC),
    }


async def test_rows_come_back_in_the_given_order_with_their_json(database_url: str) -> None:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        # Keys in an order unrelated to their sort order, with JSON of every shape.
        keys = [f"k{(i * 37) % 101:03d}" for i in range(60)]
        rows = [_row(k, {"n": i, "nested": [[], {"a": []}], "s": "é"}) for i, k in enumerate(keys)]
        async with engine.begin() as conn:
            await conn.execute(text("SELECT 1"))  # the transaction is open on the server
            back = await ORDERED.execute(conn, rows)
        assert [r.dedup_key for r in back] == keys
        assert [r.id for r in back] == sorted(r.id for r in back)
        async with engine.connect() as conn:
            stored = {
                r.dedup_key: (r.data, r.attachments)
                for r in await conn.execute(select(NOTIFICATIONS))
            }
        assert stored == {
            k: ({"n": i, "nested": [[], {"a": []}], "s": "é"}, []) for i, k in enumerate(keys)
        }
    finally:
        await engine.dispose()


async def test_duplicates_are_skipped_and_only_new_rows_return(database_url: str) -> None:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await ORDERED.execute(conn, [_row("a", {}), _row("b", {})])
        async with engine.begin() as conn:
            await conn.execute(text("SELECT 1"))
            back = await ORDERED.execute(
                conn, [_row("b", {}), _row("c", {}), _row("a", {}), _row("d", {})]
            )
        assert [r.dedup_key for r in back] == ["c", "d"]
    finally:
        await engine.dispose()


async def test_a_refused_row_is_an_integrity_error_and_nothing_is_kept(database_url: str) -> None:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text("SELECT 1"))
                await ORDERED.execute(conn, [_row("x", {}), _row("y", {}, person="nobody")])
        async with engine.connect() as conn:
            assert (await conn.execute(select(NOTIFICATIONS))).all() == []
    finally:
        await engine.dispose()


async def test_the_driver_is_used_only_inside_an_open_postgresql_transaction(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            assert await driver_in_transaction(conn) is None  # nothing sent yet
            await conn.execute(text("SELECT 1"))
            driver = await driver_in_transaction(conn)
            assert (driver is not None) == database_url.startswith("postgresql")
    finally:
        await engine.dispose()
