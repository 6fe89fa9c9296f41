"""The cloud as several processes with roles, each a real `ruang cloud serve --role` process
on PostgreSQL and a broker of the test's own.

Pinned here: ingest workers split one stream through a shared subscription and every
event lands once; the jobs leader's SIGKILL hands leadership to the standby; a desk
change ingested by an ingest process reaches the floor stream of a separate api
process; SQLite refuses every role but `all`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator

import aiomqtt
import httpx
import pytest
from sqlalchemy import func, select

from cloud.db.engine import make_engine
from cloud.db.tables import EVENTS
from launch.cluster import REPO, RoleProcess, RoleProcesses
from ruang import contract
from tests.helpers import auth_headers

NODE = "ikn-demo-l1"  # serves floor 1 of the sample layout the processes apply
WAIT_S = 60.0  # bounds a hung test only; nothing asserts how fast


async def until(check: object, *, within: float = WAIT_S) -> None:
    """Polls the async `check` until it is true; fails the test when it never is."""
    deadline = time.monotonic() + within
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{getattr(check, '__name__', check)} never held")
        await asyncio.sleep(0.1)


async def test_two_ingest_workers_split_a_stream_and_every_event_lands_once(
    roles: RoleProcesses,
) -> None:
    workers = [await roles.start("ingest", 0), await roles.start("ingest", 1)]
    for worker in workers:
        status = await worker.status()
        assert status is not None and status["role"] == "ingest" and status["leader"] is None
    # Distinct client ids: each worker keeps its own persistent session.
    names = {(await w.status() or {})["name"] for w in workers}
    assert len(names) == 2

    count = 200
    ids = [uuid.uuid4().hex for _ in range(count)]
    broker = roles.settings.mqtt_broker
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{ids[0][:8]}") as pub:
        for i, message_id in enumerate(ids):
            event = contract.ButtonPressed(
                node=NODE, desk=f"L1-D{1 + i % 9:02d}", button=1, id=message_id, ts=time.time()
            )
            await pub.publish(
                contract.topic_for(event), contract.encode(event), qos=contract.qos_for(event)
            )
            if i % 50 == 49:  # the same events again: a node resending before its event_ack
                for again in ids[i - 9 : i + 1]:
                    replay = contract.ButtonPressed(
                        node=NODE, desk="L1-D01", button=1, id=again, ts=time.time()
                    )
                    await pub.publish(contract.topic_for(replay), contract.encode(replay), qos=1)

    engine = make_engine(roles.settings.database_url, pool_size=1)
    try:

        async def all_landed() -> bool:
            async with engine.connect() as conn:
                n = await conn.scalar(
                    select(func.count()).select_from(EVENTS).where(EVENTS.c.message_id.in_(ids))
                )
            return n == count

        await until(all_landed)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(EVENTS.c.message_id, func.count())
                    .where(EVENTS.c.message_id.in_(ids))
                    .group_by(EVENTS.c.message_id)
                )
            ).all()
    finally:
        await engine.dispose()
    assert len(rows) == count and all(n == 1 for _, n in rows)
    # The broker split the stream: both workers received part of it, neither all of it.
    received = [(await w.status() or {})["received"] for w in workers]
    assert all(0 < n < count + 40 for n in received), received
    assert sum(received) >= count + 40  # every publication went to exactly one worker


async def _events_landed(url: str, ids: list[str]) -> list[int]:
    """How many rows each of `ids` has in the events table (0 for a missing one)."""
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows: dict[str, int] = dict(
                (
                    await conn.execute(
                        select(EVENTS.c.message_id, func.count())
                        .where(EVENTS.c.message_id.in_(ids))
                        .group_by(EVENTS.c.message_id)
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    return [int(rows.get(i, 0)) for i in ids]


async def test_an_ingest_worker_killed_mid_stream_loses_nothing_once_back_in_its_slot(
    roles: RoleProcesses,
) -> None:
    workers = [await roles.start("ingest", 0), await roles.start("ingest", 1)]
    ids = [uuid.uuid4().hex for _ in range(300)]
    broker = roles.settings.mqtt_broker
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{ids[0][:8]}") as pub:
        for i, message_id in enumerate(ids):
            event = contract.ButtonPressed(node=NODE, desk="L1-D02", button=2, id=message_id)
            await pub.publish(contract.topic_for(event), contract.encode(event), qos=1)
            if i == 100:  # mid-stream, with messages in flight and uncommitted
                workers[1].kill()
                await workers[1].proc.wait()
            if i == 200:
                workers[1] = await roles.start("ingest", 1)  # the same slot, its session back

    async def all_landed() -> bool:
        return all(n >= 1 for n in await _events_landed(roles.settings.database_url, ids))

    await until(all_landed)
    assert set(await _events_landed(roles.settings.database_url, ids)) == {1}


async def test_the_standby_takes_the_jobs_over_when_the_leader_is_killed(
    roles: RoleProcesses,
) -> None:
    jobs = [await roles.start("jobs", 0), await roles.start("jobs", 1)]

    async def leaders() -> list[RoleProcess]:
        found = []
        for process in jobs:
            if process.proc.returncode is None:
                status = await process.status()
                if status is not None and status["leader"]:
                    found.append(process)
        return found

    async def one_leads() -> bool:
        return len(await leaders()) == 1

    await until(one_leads)
    # Never two: the lock is PostgreSQL's, not each process's opinion.
    for _ in range(10):
        assert len(await leaders()) <= 1
        await asyncio.sleep(0.1)
    leader = (await leaders())[0]
    standby = next(p for p in jobs if p is not leader)
    assert (await standby.status() or {})["leader"] is False

    leader.kill()
    await leader.proc.wait()

    async def standby_leads() -> bool:
        return (await standby.status() or {}).get("leader") is True

    # Fail-over is expected in about the retry interval (1 s); the bound is generous.
    await until(standby_leads, within=30)
    # The new leader's jobs publish snapshots through its broker session.
    async with httpx.AsyncClient(timeout=5) as http:
        ready = await http.get(f"{standby.base}/readyz")
    assert ready.status_code == 200, ready.text


async def _sse_events(stream: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    name, data = "message", ""
    async for line in stream.aiter_lines():
        if line.startswith(":"):
            continue
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and data:
            yield name, data
            name, data = "message", ""


async def test_a_desk_change_ingested_by_one_process_reaches_the_floor_stream_of_another(
    roles: RoleProcesses,
) -> None:
    manager = auth_headers(
        roles.settings, subject="p-citra", roles=("facility_manager",), sites=("ikn-kipp",)
    )
    api = await roles.start("api", 0)
    ingest = await roles.start("ingest", 0)
    assert (await api.status() or {})["received"] is None  # the api ingests nothing
    broker = roles.settings.mqtt_broker
    async with (
        httpx.AsyncClient(base_url=api.base, timeout=30, headers=manager) as client,
        client.stream("GET", "/api/v1/floors/A1-L1/stream") as stream,
        aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{uuid.uuid4().hex[:8]}") as pub,
    ):
        assert stream.status_code == 200
        events = _sse_events(stream)
        presence = contract.Presence(node=NODE, desk="L1-D09", present=True, ts=time.time())
        await pub.publish(
            contract.topic_for(presence), contract.encode(presence), qos=contract.qos_for(presence)
        )
        async with asyncio.timeout(WAIT_S):
            async for name, data in events:
                if name != "desks":
                    continue
                desks = {d["id"]: d for d in json.loads(data)["desks"]}
                if "L1-D09" in desks:
                    assert desks["L1-D09"]["state"] == "occupied"
                    break
    assert ((await ingest.status()) or {})["received"] >= 1


async def test_sqlite_refuses_every_role_but_all(tmp_path: object) -> None:
    env = dict(os.environ, RUANG_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/one.sqlite3")
    for role in ("api", "ingest", "jobs"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "launch.cli", "cloud", "serve", "--role", role, "--port", "0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
        )  # fmt: skip
        async with asyncio.timeout(WAIT_S):
            _, err = await proc.communicate()
        assert proc.returncode == 2
        assert b"needs PostgreSQL" in err and role.encode() in err
