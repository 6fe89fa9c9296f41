"""The signal bus: payloads within PostgreSQL's limit, garbage refused, and two processes'
buses (here two instances, each with its own connections) hearing each other over NOTIFY."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from cloud.db.pg_direct import pg_dsn
from cloud.runtime.bus import InProcessBus, Signal
from cloud.runtime.pgbus import CHANNEL, MAX_PAYLOAD, PgBus, decode, encode
from launch import devservers


def test_many_ids_are_split_into_payloads_under_the_limit() -> None:
    ids = [f"DESK-{i:05d}" for i in range(3000)]
    payloads = encode(Signal.LIVE_DESKS, ids)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD for p in payloads)
    back: list[str] = []
    for payload in payloads:
        signal, chunk = decode(payload)
        assert signal is Signal.LIVE_DESKS
        back += chunk
    assert back == ids
    # A signal without ids (every snapshot due) is one payload.
    assert [decode(p) for p in encode(Signal.SNAPSHOT_ALL, [])] == [(Signal.SNAPSHOT_ALL, [])]


@pytest.mark.parametrize(
    "payload",
    ["not json", "[]", json.dumps({"s": "nope", "ids": []}), json.dumps({"s": "live_desks"}),
     json.dumps({"s": "live_desks", "ids": [1, 2]})],
)  # fmt: skip
def test_a_payload_that_is_not_a_signal_is_refused(payload: str) -> None:
    with pytest.raises(ValueError):
        decode(payload)


def test_in_process_bus_calls_listeners_and_survives_a_broken_one() -> None:
    bus = InProcessBus()
    heard: list[list[str]] = []

    def broken(_ids: list[str]) -> None:
        raise RuntimeError("listener bug")

    bus.listen(Signal.LIVE_ROOMS, broken)
    bus.listen(Signal.LIVE_ROOMS, heard.append)
    bus.publish(Signal.LIVE_ROOMS, ["R1"])
    bus.publish(Signal.LIVE_DESKS, ["D1"])  # nobody listens: nothing happens
    assert heard == [["R1"]]


async def test_two_buses_hear_each_other_and_garbage_is_counted(
    pg_server: devservers.Postgres,
) -> None:
    url = pg_server.create_database("ruang_bus_test")
    one, two = PgBus(url, name="bus-one"), PgBus(url, name="bus-two")
    heard_one: asyncio.Queue[list[str]] = asyncio.Queue()
    heard_two: asyncio.Queue[list[str]] = asyncio.Queue()
    one.listen(Signal.LIVE_DESKS, heard_one.put_nowait)
    two.listen(Signal.LIVE_DESKS, heard_two.put_nowait)
    await one.start()
    await two.start()
    try:
        assert one.listening and two.listening
        one.publish(Signal.LIVE_DESKS, ["L1-D01", "L1-D02"])
        async with asyncio.timeout(30):
            # Both hear it, the publisher too (its listeners get everything the same way).
            assert await heard_two.get() == ["L1-D01", "L1-D02"]
            assert await heard_one.get() == ["L1-D01", "L1-D02"]
        # Someone else on the channel with a payload that is no signal: refused, counted.
        conn = await asyncpg.connect(pg_dsn(url))
        try:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, "{oops")
        finally:
            await conn.close()
        two.publish(Signal.LIVE_DESKS, ["L1-D03"])
        async with asyncio.timeout(30):
            assert await heard_one.get() == ["L1-D03"]
        assert one.rejected == 1 and one.received == 2
    finally:
        await one.stop()
        await two.stop()
