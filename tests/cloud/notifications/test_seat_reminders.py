"""Seat reminders for shuttle reservations: once per confirmed seat, shortly before departure,
naming the route and the stop; waitlisted places are not reminded."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from cloud.db.tables import TRANSPORT_STOPS
from cloud.settings import CloudSettings
from cloud.transport.seat_notices import remind_seats
from tests.cloud.conftest import start_cloud
from tests.cloud.transport.seat_helpers import (
    future_trip,
    import_people,
    load_schedule,
    reservation,
)
from tests.helpers import auth_headers


async def test_a_confirmed_seat_is_reminded_once_before_departure(
    settings: CloudSettings,
) -> None:
    settings = settings.model_copy(update={"shuttle_default_capacity": 1})
    async with start_cloud(settings) as cloud:
        engine, store = cloud.app.state.engine, cloud.app.state.booking_store
        await load_schedule(engine)
        await import_people(cloud.http, ["p0", "p1"])
        trip = await future_trip(engine)
        r = await cloud.http.post("/api/v1/transport/reservations", json=reservation(trip, "p0"))
        assert r.status_code == 201, r.text
        seat = r.json()
        r = await cloud.http.post(
            "/api/v1/transport/reservations", json=reservation(trip, "p1", waitlist=True)
        )
        assert r.status_code == 201 and r.json()["status"] == "waitlisted", r.text
        departs = datetime.fromisoformat(seat["departs_at"].replace("Z", "+00:00"))

        lead = timedelta(minutes=15)
        assert await remind_seats(store, departs - timedelta(minutes=16), lead=lead) == []
        assert await remind_seats(store, departs - timedelta(minutes=10), lead=lead) == [seat["id"]]
        # A second pass finds it again but the de-dup key adds nothing.
        assert await remind_seats(store, departs - timedelta(minutes=5), lead=lead) == [seat["id"]]
        assert await remind_seats(store, departs, lead=lead) == []

        p0 = auth_headers(settings, "p0", ("asn",))
        r = await cloud.http.get("/api/v1/me/notifications", params={"lang": "en"}, headers=p0)
        [note] = r.json()["items"]
        assert note["kind"] == "seat_reminder"
        assert note["title"].startswith("Your seat on ") and "leaves at" in note["title"]
        async with engine.connect() as conn:
            stop_name = await conn.scalar(
                select(TRANSPORT_STOPS.c.name).where(TRANSPORT_STOPS.c.stop_id == trip.stops[0])
            )
        assert f"leaves from {stop_name} at" in note["body"]
        p1 = auth_headers(settings, "p1", ("asn",))
        r = await cloud.http.get("/api/v1/me/notifications", headers=p1)
        assert r.json()["items"] == []
