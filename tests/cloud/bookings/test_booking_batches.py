"""Concurrent bookings written together (on SQLite the store's writer inserts every queued
row in one transaction, cloud/bookings/store.py): each request gets its own answer, a
conflict anywhere in a batch costs only its own request a 409, and every created
booking has exactly one webhook event."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select

from cloud.db.tables import BOOKINGS
from cloud.db.tables import INTEGRATION_EVENTS as EVENTS
from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud

DISTINCT = 30


async def test_a_burst_with_duplicates_books_each_slot_once_and_answers_each_request(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    start, end = slot(days=3, hour=8, hours=1)
    r = await cloud.http.get("/api/v1/availability", params={"start": start, "end": end})
    desks = [
        d["id"]
        for d in r.json()["desks"]
        if d["mode"] == "reservable" and d["reserved_for_agency"] in (None, "Otorita IKN")
    ]
    assert len(desks) >= DISTINCT
    # One person, one hour each (the person rule holds), a desk each; then the first
    # ten again, so ten pairs race for the same desk and slot within the burst.
    bodies = [
        booking(desks[i], "p-ayu", slot(days=1 + i // 10, hour=8 + i % 10, hours=1))
        for i in range(DISTINCT)
    ]
    bodies += bodies[:10]

    responses = await asyncio.gather(*(cloud.http.post("/api/v1/bookings", json=b) for b in bodies))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: DISTINCT, 409: 10}, statuses
    for body, r in zip(bodies, responses, strict=True):
        if r.status_code == 201:
            # Each answer is its own request's booking, not a neighbour's in the batch.
            got = r.json()
            assert (got["desk_id"], got["person_id"]) == (body["desk_id"], body["person_id"])
        else:
            # The duplicate overlaps on desk and person alike: either refusal is right.
            assert r.json()["title"] in {
                "Desk already booked for that time",
                "You already have a desk for that time",
            }
    won = {(r.json()["desk_id"], r.json()["starts_at"]) for r in responses if r.status_code == 201}
    assert len(won) == DISTINCT

    async with cloud.app.state.engine.connect() as conn:
        stored = await conn.scalar(select(func.count()).select_from(BOOKINGS))
        events = (
            await conn.execute(
                select(EVENTS.c.data).where(EVENTS.c.kind == "booking.created")
            )
        ).scalars().all()  # fmt: skip
    assert stored == DISTINCT
    assert sorted(e["booking_id"] for e in events) == sorted(
        r.json()["id"] for r in responses if r.status_code == 201
    )


async def test_a_burst_of_distinct_bookings_answers_each_request_with_its_own_booking(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    bodies = [
        booking(desk, person, slot(days=2 + i, hour=9, hours=2))
        for i in range(3)
        for desk, person in (("L1-D01", "p-ayu"), ("L1-D02", "p-budi"), ("L1-D03", "p-citra"))
    ]
    responses = await asyncio.gather(*(cloud.http.post("/api/v1/bookings", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [201] * len(bodies), [r.text for r in responses]
    for body, r in zip(bodies, responses, strict=True):
        got = r.json()
        assert (got["desk_id"], got["person_id"]) == (body["desk_id"], body["person_id"])
        assert got["starts_at"][:10] == body["starts_at"][:10]
    assert len({r.json()["id"] for r in responses}) == len(bodies)
