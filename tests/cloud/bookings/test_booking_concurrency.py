"""200 simultaneous bookings of one desk and slot through a real uvicorn server: one wins.

The server runs on a free loopback port with the app's real lifespan; the
requests go over 200 TCP connections at once, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import httpx

from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import serving
from tests.helpers import auth_headers

RACERS = 200


@contextlib.asynccontextmanager
async def http_server(settings: CloudSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings) as (base, _):
        # An idle connection is dropped by the client before uvicorn's 5 s keep-alive
        # timeout can close it under a request being sent (a reset, not an answer).
        limits = httpx.Limits(
            max_connections=RACERS, max_keepalive_connections=RACERS, keepalive_expiry=1.0
        )
        async with httpx.AsyncClient(
            base_url=base, limits=limits, timeout=60, headers=auth_headers(settings)
        ) as client:
            yield client


async def _race(client: httpx.AsyncClient, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    go = asyncio.Event()

    async def one(body: dict[str, str]) -> httpx.Response:
        await go.wait()
        return await client.post("/api/v1/bookings", json=body)

    tasks = [asyncio.create_task(one(b)) for b in bodies]
    await asyncio.sleep(0)
    go.set()
    return await asyncio.gather(*tasks)


async def _seed_people(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = [f"racer-{i:03d}" for i in range(count)]
    rows = "".join(f"{p},asn,Peserta {p},Otorita IKN,asn\n" for p in ids)
    r = await client.post(
        "/api/v1/people/import",
        content="id,kind,name,agency,role\n" + rows,
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    return ids


async def test_200_racing_bookings_of_one_desk_make_exactly_one(settings: CloudSettings) -> None:
    async with http_server(settings) as client:
        from cloud.db.engine import make_engine

        engine = make_engine(settings.database_url)
        try:
            await seed(client, settings, engine)
        finally:
            await engine.dispose()
        people = await _seed_people(client, RACERS)
        when = slot(days=2)
        responses = await _race(client, [booking("L1-D01", p, when) for p in people])

        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: RACERS - 1}, statuses
        for r in responses:
            if r.status_code == 409:
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["title"] == "Desk already booked for that time"
        stored = (await client.get("/api/v1/bookings", params={"desk": "L1-D01"})).json()
        assert len(stored) == 1 and stored[0]["status"] == "booked"

        # One person racing for many desks in one slot also gets exactly one.
        desks = [f"L1-D{n:02d}" for n in range(1, 7)]
        responses = await _race(client, [booking(d, "racer-000", slot(days=3)) for d in desks])
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: len(desks) - 1}, statuses
        assert {r.json()["title"] for r in responses if r.status_code == 409} == {
            "You already have a desk for that time"
        }
