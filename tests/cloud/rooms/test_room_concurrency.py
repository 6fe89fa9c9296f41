"""200 simultaneous bookings of one room and slot through a real uvicorn server: one wins.

Like the desks' proof (tests/cloud/bookings/test_booking_concurrency.py): 200 TCP
connections at once against the app's real lifespan, on SQLite and PostgreSQL; the
database's overlap guard (migration 0021) is what leaves exactly one booking.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from cloud.db.engine import make_engine
from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import seed
from tests.cloud.bookings.test_booking_concurrency import RACERS, _seed_people, http_server

from .room_helpers import ROOM_L, at, body


async def _race(client: httpx.AsyncClient, path: str, bodies: list[Any]) -> list[httpx.Response]:
    go = asyncio.Event()

    async def one(b: Any) -> httpx.Response:
        await go.wait()
        return await client.post(path, json=b)

    tasks = [asyncio.create_task(one(b)) for b in bodies]
    await asyncio.sleep(0)
    go.set()
    return await asyncio.gather(*tasks)


async def test_200_racing_bookings_of_one_room_make_exactly_one(settings: CloudSettings) -> None:
    async with http_server(settings) as client:
        engine = make_engine(settings.database_url)
        try:
            await seed(client, settings, engine)
        finally:
            await engine.dispose()
        people = await _seed_people(client, RACERS)
        when = at(days=2, hour=10)
        # Each racer wants an overlapping, not identical, slot: the guard is about overlap.
        start = when[0]
        bodies = []
        for i, p in enumerate(people):
            shifted = at(days=2, hour=10, minutes=30 + (i % 60))
            bodies.append(body(ROOM_L, p, (start, shifted[1])))
        responses = await _race(client, "/api/v1/room-bookings", bodies)

        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: RACERS - 1}, statuses
        assert {r.json()["title"] for r in responses if r.status_code == 409} == {
            "Room already booked for that time"
        }
        stored = (await client.get("/api/v1/room-bookings", params={"room": ROOM_L})).json()
        assert len(stored) == 1 and stored[0]["status"] == "booked"

        # 200 panels pressing "book now" on one free room at once: one meeting. Fresh
        # connections: the server may have closed the idle keep-alive ones meanwhile.
        # An idle connection is dropped by the client before uvicorn's 5 s keep-alive
        # timeout can close it under a request being sent (a reset, not an answer).
        limits = httpx.Limits(
            max_connections=RACERS, max_keepalive_connections=RACERS, keepalive_expiry=1.0
        )
        async with httpx.AsyncClient(base_url=client.base_url, limits=limits, timeout=60) as panel:
            path = "/api/v1/panel/A1-L1-R1/book-now?k=" + _panel_key(settings, "A1-L1-R1")
            responses = await _race(panel, path, [{"minutes": 30}] * RACERS)
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: RACERS - 1}, statuses


def _panel_key(settings: CloudSettings, room: str) -> str:
    from cloud.bookings.qrcheckin import CheckinKeys
    from cloud.rooms.panel import panel_key

    return panel_key(CheckinKeys.from_settings(settings), room)
