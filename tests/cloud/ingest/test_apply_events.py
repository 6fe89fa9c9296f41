"""A flush of events is de-duplicated by one multi-row INSERT and applied in arrival order.

Pins cloud/ingest/apply_events.py: the statement count does not grow with the
events' count, and effects inside one flush see each other as one by one did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.engine import make_engine, migrate
from cloud.db.tables import BADGES, BOOKINGS, DESKS, EVENTS, PEOPLE
from cloud.ingest.apply import Applier, ApplyResult, Envelope
from ruang import contract
from tests.cloud.binding_helpers import bind

TS = 1_750_000_000.0
KNOWN_BADGE = "0A0B0C0D"
DESKS_A = [f"A{i}" for i in range(20)]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate(database_url)
    engine = make_engine(database_url)
    await bind(engine, "node-a", DESKS_A)
    async with engine.begin() as conn:
        await conn.execute(insert(PEOPLE).values(id="p-1", kind="asn", name="P One", role="asn"))
        await conn.execute(
            insert(BADGES).values(
                kind="nfc",
                uid=KNOWN_BADGE,
                person_id="p-1",
                status="active",
                issued_at=datetime.fromtimestamp(TS - 86400, UTC),
            )
        )
    try:
        yield engine
    finally:
        await engine.dispose()


def env(msg: contract.Message) -> Envelope:
    kind = "" if isinstance(msg, contract.NodeState) else contract.kind_of(msg)
    channel = contract.Channel.STATE if not kind else contract.Channel.EVENTS
    return Envelope(contract.ParsedTopic(msg.node, channel, kind), msg, TS + 10)


async def run(applier: Applier, engine: AsyncEngine, msgs: list[contract.Message]) -> ApplyResult:
    async with engine.begin() as conn:
        result = await applier.apply(conn, [env(m) for m in msgs])
    applier.committed(result)
    return result


async def desk(engine: AsyncEngine, desk_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(DESKS).where(DESKS.c.id == desk_id))).one()


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_statements_per_flush_do_not_grow_with_the_number_of_events(
    engine: AsyncEngine,
) -> None:
    applier = Applier(engine.dialect.name)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    def flush(n: int, offset: int) -> list[contract.Message]:
        return [
            contract.CheckIn(node="node-a", desk=DESKS_A[i % 20], badge="0102030405", ts=TS + i)
            if i % 2 == 0
            else contract.CheckOut(node="node-a", desk=DESKS_A[i % 20], ts=TS + i)
            for i in range(offset, offset + n)
        ]

    sa_event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        await run(applier, engine, flush(4, 0))  # reads the bindings once
        statements.clear()
        await run(applier, engine, flush(10, 4))
        small = len(statements)
        statements.clear()
        await run(applier, engine, flush(400, 14))
        large = len(statements)
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert large == small
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO EVENTS")]
    assert len(inserts) == 1 and "ON CONFLICT" in inserts[0] and "RETURNING" in inserts[0]
    assert await count(engine, EVENTS) == 414


async def test_events_of_one_flush_on_one_desk_apply_in_arrival_order(
    engine: AsyncEngine,
) -> None:
    applier = Applier(engine.dialect.name)
    first_in = contract.CheckIn(node="node-a", desk="A1", badge="0102030405", ts=TS + 1)
    out = contract.CheckOut(node="node-a", desk="A1", ts=TS + 3)
    late_older_in = contract.CheckIn(node="node-a", desk="A1", badge="0607080900", ts=TS + 2)
    other_in = contract.CheckIn(node="node-a", desk="A2", badge="0102030405", ts=TS + 1)
    other_out = contract.CheckOut(node="node-a", desk="A2", ts=TS + 2)
    other_again = contract.CheckIn(node="node-a", desk="A2", badge="0607080900", ts=TS + 4)
    result = await run(
        applier, engine, [first_in, out, late_older_in, other_in, other_out, other_again]
    )
    assert result.applied == 6 and result.duplicates == 0
    # The older check-in, late in the flush, does not undo the newer check-out.
    a1 = await desk(engine, "A1")
    assert a1.state == "free" and a1.occupant_badge is None
    a2 = await desk(engine, "A2")
    assert a2.state == "occupied" and a2.occupant_badge == "0607080900"


async def test_a_message_twice_in_one_flush_is_stored_and_applied_once(
    engine: AsyncEngine,
) -> None:
    applier = Applier(engine.dialect.name)
    tap = contract.CheckIn(node="node-a", desk="A3", badge=KNOWN_BADGE, ts=TS)
    result = await run(applier, engine, [tap, tap])
    assert (result.applied, result.duplicates) == (1, 1)
    assert await count(engine, EVENTS) == 1
    assert await count(engine, BOOKINGS) == 1
    again = await run(applier, engine, [tap])
    assert (again.applied, again.duplicates) == (0, 1)


async def test_check_out_sees_the_walk_up_an_earlier_check_in_of_the_same_flush_created(
    engine: AsyncEngine,
) -> None:
    applier = Applier(engine.dialect.name)
    tap_in = contract.CheckIn(node="node-a", desk="A4", badge=KNOWN_BADGE, ts=TS)
    tap_out = contract.CheckOut(node="node-a", desk="A4", badge=KNOWN_BADGE, ts=TS + 60)
    result = await run(applier, engine, [tap_in, tap_out])
    assert result.applied == 2 and result.booking_nodes == {"node-a"}
    async with engine.connect() as conn:
        (booking,) = (await conn.execute(select(BOOKINGS))).all()
    assert booking.walk_up and booking.person_id == "p-1"
    assert booking.status == "completed" and booking.checked_out_at is not None
