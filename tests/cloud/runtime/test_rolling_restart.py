"""A rolling restart of the api replicas behind HAProxy, under load, as docs/operations.md
("Upgrades") tells an operator to do it: drain one replica in HAProxy, stop it with
SIGTERM, start the new one on the same port, put it back, then the next.

Pinned: no booking request fails and none is booked twice; reads fail at most in the
way a client retries anyway (none did in the runs we made, but a read is idempotent,
so the load's readers retry once, as a browser or the dashboards would); every
booking answered 201 is in the database exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from cloud.db.engine import make_engine
from cloud.db.tables import BOOKINGS
from launch import devservers
from launch.cluster import RoleProcesses
from tests.cloud.runtime.test_load_balancer import _add_person
from tests.helpers import auth_headers

WRITERS = 4
READERS = 4
DESKS = [f"L1-D{n:02d}" for n in range(1, 7)]  # the open zone of the sample layout


async def _wait_in_rotation(lb: devservers.HAProxy, server: str) -> None:
    """Until HAProxy's health checks have put `server` back (state UP)."""
    for _ in range(300):  # bounds a replica that never comes back
        stat = lb.command("show stat")
        row = next(line for line in stat.splitlines() if f",{server}," in line)
        if ",UP," in row:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{server} never came back into rotation: {row}")


async def test_api_replicas_restarted_one_by_one_under_load_lose_no_booking(
    roles: RoleProcesses, haproxy_binary: str
) -> None:
    api = [await roles.start("api", 0), await roles.start("api", 1)]
    await roles.start("jobs", 0)
    for k in range(len(DESKS)):
        await _add_person(roles.settings.database_url, f"p-roll-{k}")
    admin = auth_headers(roles.settings)
    day0 = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    slots = itertools.count()
    booked: list[int] = []
    write_failures: list[str] = []
    read_failures: list[str] = []
    stop = asyncio.Event()

    with devservers.haproxy([p.port for p in api]) as lb:
        limits = httpx.Limits(keepalive_expiry=1.0)
        async with httpx.AsyncClient(
            base_url=lb.url, timeout=30, headers=admin, limits=limits
        ) as http:

            async def writer() -> None:
                while not stop.is_set():
                    n = next(slots)
                    # Each person has a desk; each of their bookings is the next half hour.
                    k, start = n % len(DESKS), day0 + timedelta(minutes=30 * (n // len(DESKS)))
                    body = {
                        "desk_id": DESKS[k],
                        "person_id": f"p-roll-{k}",
                        "starts_at": start.isoformat(),
                        "ends_at": (start + timedelta(minutes=30)).isoformat(),
                    }
                    try:
                        r = await http.post("/api/v1/bookings", json=body)
                    except httpx.HTTPError as exc:
                        write_failures.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if r.status_code == 201:
                        booked.append(r.json()["id"])
                    else:
                        write_failures.append(f"{r.status_code} {r.text[:200]}")

            async def reader() -> None:
                while not stop.is_set():
                    for attempt in (1, 2):  # an idempotent read is retried once
                        try:
                            r = await http.get("/api/v1/bookings", params={"person": "p-roll-0"})
                        except httpx.HTTPError as exc:
                            outcome = f"{type(exc).__name__}: {exc}"
                        else:
                            if r.status_code == 200:
                                break
                            outcome = f"{r.status_code} {r.text[:200]}"
                        if attempt == 2:
                            read_failures.append(outcome)

            load = [asyncio.create_task(writer()) for _ in range(WRITERS)]
            load += [asyncio.create_task(reader()) for _ in range(READERS)]
            try:
                await asyncio.sleep(1.0)
                for i, old in enumerate(list(api)):
                    server = f"ruang_api/api-{i}"
                    # Drain: HAProxy sends this replica nothing new; what it has, finishes.
                    lb.command(f"set server {server} state drain")
                    await asyncio.sleep(0.5)
                    assert await roles.stop(old) == 0  # a graceful stop exits 0
                    api[i] = await roles.start("api", i, port=old.port)  # "the new release"
                    lb.command(f"set server {server} state ready")
                    await _wait_in_rotation(lb, f"api-{i}")
                    await asyncio.sleep(0.5)
            finally:
                stop.set()
                await asyncio.gather(*load)

    assert not write_failures, write_failures
    assert not read_failures, read_failures
    assert len(booked) > 20, "the load barely ran"
    assert len(set(booked)) == len(booked)
    engine = make_engine(roles.settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            stored = await conn.scalar(
                select(func.count()).select_from(BOOKINGS).where(BOOKINGS.c.id.in_(booked))
            )
    finally:
        await engine.dispose()
    assert stored == len(booked)
