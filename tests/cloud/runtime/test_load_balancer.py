"""Api replicas behind a real HAProxy (launch/devservers.py `haproxy`), on PostgreSQL.

Pinned here: round-robin reaches both api replicas; a booking made through the
balancer is seen by either replica; after a SIGKILL of one replica, reads through
the balancer keep answering 200 (the killed replica's in-flight GETs are retried
on the other, new connections to it are redispatched, then the health check
takes it out).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import insert

from cloud.db.engine import make_engine
from cloud.db.tables import PEOPLE
from launch import devservers
from launch.cluster import RoleProcesses
from tests.helpers import auth_headers

READS_AFTER_KILL = 200
CONCURRENT_READS = 8


async def _add_person(database_url: str, person: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(PEOPLE),
                [{"id": person, "kind": "asn", "name": "uji", "role": "asn",
                  "created_at": datetime.now(UTC)}],
            )  # fmt: skip
    finally:
        await engine.dispose()


async def test_api_replicas_behind_haproxy_share_bookings_and_survive_a_sigkill(
    roles: RoleProcesses, haproxy_binary: str
) -> None:
    api = [await roles.start("api", 0), await roles.start("api", 1)]
    await roles.start("ingest", 0)
    await roles.start("jobs", 0)
    admin = auth_headers(roles.settings)
    await _add_person(roles.settings.database_url, "p-lb")
    with devservers.haproxy([p.port for p in api]) as lb:
        async with httpx.AsyncClient(base_url=lb.url, timeout=30, headers=admin) as http:
            # Round-robin: a handful of requests answer from both replicas' names.
            names = set()
            for _ in range(10):
                r = await http.get("/role")
                assert r.status_code == 200 and r.json()["role"] == "api"
                names.add(r.json()["name"])
            assert names == {(await p.status() or {})["name"] for p in api}

            start = (datetime.now(UTC) + timedelta(days=1)).replace(
                hour=2, minute=0, second=0, microsecond=0
            )
            r = await http.post(
                "/api/v1/bookings",
                json={"desk_id": "L1-D03", "person_id": "p-lb",
                      "starts_at": start.isoformat(),
                      "ends_at": (start + timedelta(hours=1)).isoformat()},
            )  # fmt: skip
            assert r.status_code == 201, r.text
            booking = r.json()["id"]
            for replica in api:  # each replica reads it from the shared database
                async with httpx.AsyncClient(base_url=replica.base, headers=admin) as direct:
                    listed = await direct.get("/api/v1/bookings")
                    assert listed.status_code == 200
                    assert booking in {b["id"] for b in listed.json()}

            # SIGKILL one replica while reads stream through the balancer.
            statuses: list[int] = []

            retried: list[str] = []

            async def reader() -> None:
                while len(statuses) < READS_AFTER_KILL:
                    try:
                        r = await http.get("/api/v1/bookings")
                    except httpx.TransportError as exc:
                        # The killed replica died mid-answer: HAProxy cannot retry a
                        # response already begun, so the client retries its idempotent
                        # read once (what the issue allows), and it must then succeed.
                        retried.append(type(exc).__name__)
                        r = await http.get("/api/v1/bookings")
                    statuses.append(r.status_code)

            readers = [asyncio.create_task(reader()) for _ in range(CONCURRENT_READS)]
            await asyncio.sleep(0.2)
            api[0].kill()
            await api[0].proc.wait()
            await asyncio.gather(*readers)
            assert statuses.count(200) == len(statuses), statuses
            assert len(retried) <= CONCURRENT_READS, retried  # at most the reads in flight
            # Only the survivor answers now.
            alive = (await api[1].status() or {})["name"]
            assert {(await http.get("/role")).json()["name"] for _ in range(6)} == {alive}
