"""200 simultaneous reservations for the last 10 seats of a trip, through a real uvicorn server:
exactly 10 confirmed, 190 refused with a problem+json 409 saying the trip is full.

As the desks' proof (tests/cloud/bookings/test_booking_concurrency.py): a free
loopback port, the app's real lifespan, 200 TCP connections released at once, on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import httpx
from sqlalchemy import func, select

from cloud.db.engine import make_engine
from cloud.db.tables import RESERVATIONS
from cloud.settings import CloudSettings
from tests.cloud.conftest import serving
from tests.cloud.transport.seat_helpers import (
    future_trip,
    import_people,
    load_schedule,
    reservation,
)
from tests.helpers import auth_headers

RACERS = 200
CAPACITY = 12
ALREADY_TAKEN = CAPACITY - 10  # so the race is for the last 10 seats


@contextlib.asynccontextmanager
async def http_server(settings: CloudSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings) as (base, _):
        # Idle connections are dropped well before uvicorn's 5 s keep-alive closes them:
        # a loaded machine between two races must not hand the second a dead socket.
        limits = httpx.Limits(
            max_connections=RACERS, max_keepalive_connections=RACERS, keepalive_expiry=1.0
        )
        async with httpx.AsyncClient(
            base_url=base, limits=limits, timeout=60, headers=auth_headers(settings)
        ) as client:
            yield client


async def _race(client: httpx.AsyncClient, bodies: list[dict[str, object]]) -> list[httpx.Response]:
    go = asyncio.Event()

    async def one(body: dict[str, object]) -> httpx.Response:
        await go.wait()
        return await client.post("/api/v1/transport/reservations", json=body)

    tasks = [asyncio.create_task(one(b)) for b in bodies]
    await asyncio.sleep(0)
    go.set()
    return await asyncio.gather(*tasks)


async def test_200_racing_reservations_for_the_last_10_seats_confirm_exactly_10(
    settings: CloudSettings,
) -> None:
    settings = settings.model_copy(update={"shuttle_default_capacity": CAPACITY})
    engine = make_engine(settings.database_url)
    try:
        async with http_server(settings) as client:
            await load_schedule(engine)
            trip = await future_trip(engine)
            early = [f"early-{i}" for i in range(ALREADY_TAKEN)]
            racers = [f"racer-{i:03d}" for i in range(RACERS)]
            await import_people(client, early + racers)
            for person in early:
                r = await client.post(
                    "/api/v1/transport/reservations", json=reservation(trip, person)
                )
                assert r.status_code == 201 and r.json()["status"] == "confirmed", r.text

            responses = await _race(client, [reservation(trip, p) for p in racers])

            statuses = Counter(r.status_code for r in responses)
            assert statuses == {201: 10, 409: RACERS - 10}, statuses
            for r in responses:
                if r.status_code == 409:
                    assert r.headers["content-type"] == "application/problem+json"
                    assert r.json()["title"] == "Trip full"
                    assert "waitlist=true" in r.json()["detail"]
                else:
                    assert r.json()["status"] == "confirmed"
            seats = (
                await client.get(
                    f"/api/v1/transport/trips/{trip.trip_id}/{trip.service_date}/seats"
                )
            ).json()
            assert (seats["capacity"], seats["confirmed"], seats["free"]) == (CAPACITY, CAPACITY, 0)
            async with engine.connect() as conn:
                stored = await conn.scalar(
                    select(func.count())
                    .select_from(RESERVATIONS)
                    .where(RESERVATIONS.c.status == "confirmed")
                )
            assert stored == CAPACITY  # the counter and the rows agree: nobody overbooked

            # One person racing for one trip (with seats left) gets exactly one.
            other = await future_trip(engine, days_ahead=2, last=False)
            responses = await _race(client, [reservation(other, "racer-000")] * 20)
            statuses = Counter(r.status_code for r in responses)
            assert statuses == {201: 1, 409: 19}, statuses
            assert {r.json()["title"] for r in responses if r.status_code == 409} == {
                "Already reserved"
            }
    finally:
        await engine.dispose()
