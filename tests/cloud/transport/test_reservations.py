"""Seat reservations through the API and the services: waitlist order, cancel, no-show release,
boarding of reserved riders and walk-ons within free capacity, the vehicle's snapshot parts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cloud.db.tables import NOTIFICATIONS, RESERVATIONS, TRIP_SEATS
from cloud.settings import CloudSettings
from cloud.transport import reservations, seat_vehicles
from cloud.transport.noshow import release_seat_no_shows
from cloud.transport.seat_facts import CapacityRule
from cloud.transport.seat_snapshot import vehicle_snapshot_parts
from tests.cloud.conftest import RunningCloud, start_cloud
from tests.cloud.transport.seat_helpers import (
    TripRef,
    add_vehicle,
    future_trip,
    import_people,
    load_schedule,
    reservation,
)
from tests.helpers import auth_headers

RESERVE = "/api/v1/transport/reservations"
RULE = CapacityRule(default=3, per_route={})


@pytest.fixture
async def seats_cloud(settings: CloudSettings) -> AsyncIterator[RunningCloud]:
    settings = settings.model_copy(update={"shuttle_default_capacity": 3})
    async with start_cloud(settings) as cloud:
        await load_schedule(cloud.app.state.engine)
        await import_people(cloud.http, [f"p{i}" for i in range(8)])
        yield cloud


def _seats_url(trip: TripRef) -> str:
    return f"/api/v1/transport/trips/{trip.trip_id}/{trip.service_date}/seats"


async def _reserve(
    http: httpx.AsyncClient, trip: TripRef, person: str, **extra: object
) -> dict[str, Any]:
    r = await http.post(RESERVE, json=reservation(trip, person, **extra))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_full_trip_refuses_then_waitlist_promotes_in_order_on_cancel(
    seats_cloud: RunningCloud,
) -> None:
    http = seats_cloud.http
    trip = await future_trip(seats_cloud.app.state.engine)
    seated = [await _reserve(http, trip, f"p{i}") for i in range(3)]
    assert {s["status"] for s in seated} == {"confirmed"}

    r = await http.post(RESERVE, json=reservation(trip, "p3"))
    assert r.status_code == 409 and r.json()["title"] == "Trip full"
    queue = [await _reserve(http, trip, f"p{i}", waitlist=True) for i in (3, 4, 5)]
    assert [q["status"] for q in queue] == ["waitlisted"] * 3
    assert [q["waitlist_position"] for q in queue] == [1, 2, 3]
    seats = (await http.get(_seats_url(trip))).json()
    assert (seats["confirmed"], seats["free"], seats["waitlist"]) == (3, 0, 3)
    assert "person_id" not in seats and "p0" not in str(seats)  # counts, never names

    # One per person per trip instance, waitlist included.
    r = await http.post(RESERVE, json=reservation(trip, "p3", waitlist=True))
    assert r.status_code == 409 and r.json()["title"] == "Already reserved"

    # A cancelled seat goes to the first in line, then the next.
    r = await http.delete(f"{RESERVE}/{seated[1]['id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await http.delete(f"{RESERVE}/{seated[0]['id']}")
    assert r.status_code == 200
    async with seats_cloud.app.state.engine.connect() as conn:
        rows = {
            r.person_id: r
            for r in await conn.execute(
                select(RESERVATIONS).where(RESERVATIONS.c.walk_on.is_(False))
            )
        }
    assert rows["p3"].status == rows["p4"].status == "confirmed"
    assert rows["p3"].promoted_at <= rows["p4"].promoted_at
    assert rows["p5"].status == "waitlisted"
    me = auth_headers(seats_cloud.app.state.settings, "p5", ("asn",))
    mine = (await http.get("/api/v1/me/transport/reservations", headers=me)).json()
    assert [(m["status"], m["waitlist_position"]) for m in mine] == [("waitlisted", 1)]

    # A waitlist place can be cancelled too; then nobody is queued.
    r = await http.delete(f"{RESERVE}/{mine[0]['id']}", headers=me)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await http.delete(f"{RESERVE}/{mine[0]['id']}", headers=me)
    assert r.status_code == 409 and r.json()["title"] == "Reservation not cancellable"
    seats = (await http.get(_seats_url(trip))).json()
    assert (seats["confirmed"], seats["free"], seats["waitlist"]) == (3, 0, 0)


async def test_people_reserve_and_cancel_only_their_own(seats_cloud: RunningCloud) -> None:
    http, settings = seats_cloud.http, seats_cloud.app.state.settings
    trip = await future_trip(seats_cloud.app.state.engine)
    p1 = auth_headers(settings, "p1", ("asn",))
    r = await http.post(RESERVE, json=reservation(trip, "p2"), headers=p1)
    assert r.status_code == 403
    body = reservation(trip, "p1")
    del body["person_id"]
    r = await http.post(RESERVE, json=body, headers=p1)
    assert r.status_code == 201 and r.json()["person_id"] == "p1"
    r = await http.delete(
        f"{RESERVE}/{r.json()['id']}", headers=auth_headers(settings, "p2", ("asn",))
    )
    assert r.status_code == 403
    r = await http.post(RESERVE, json={**reservation(trip, "p2"), "from_stop": "NOWHERE"})
    assert r.status_code == 422 and r.json()["title"] == "Unknown stop"
    r = await http.post(RESERVE, json={**reservation(trip, "p2"), "service_date": "20200106"})
    assert r.status_code == 404 and r.json()["title"] == "Trip not found"


async def test_no_show_releases_the_seat_to_the_waitlist_of_later_stops(
    seats_cloud: RunningCloud,
) -> None:
    http, store = seats_cloud.http, seats_cloud.app.state.booking_store
    engine = seats_cloud.app.state.engine
    trip = await future_trip(engine)
    first, later = trip.stops[0], trip.stops[-2]
    boarded = await _reserve(http, trip, "p0")
    absent = await _reserve(http, trip, "p1")
    await _reserve(http, trip, "p2", from_stop=later)
    queued_late = await _reserve(http, trip, "p3", from_stop=later, waitlist=True)
    queued_first = await _reserve(http, trip, "p4", from_stop=first, waitlist=True)
    assert queued_first["waitlist_position"] == 2

    ts = datetime.fromtimestamp(trip.departures[0], UTC)
    async with engine.begin() as conn:
        done = await reservations.mark_boarded(
            conn, trip.trip_id, trip.service_date, "p0", ts, capacity=RULE
        )
        assert (done.result, done.reservation_id) == ("reserved", boarded["id"])
        again = await reservations.mark_boarded(
            conn, trip.trip_id, trip.service_date, int(boarded["id"]), ts, capacity=RULE
        )
        assert again.result == "already_boarded"

    # Before departure + grace nothing is released.
    grace = timedelta(minutes=2)
    at_departure = ts + timedelta(minutes=1)
    assert (await release_seat_no_shows(store, at_departure, grace=grace)).no_shows == []
    # After it: p1 is a no-show; the bus left the first stop, so p4 (waiting there)
    # expires and p3 (waiting at a later stop) gets the seat although p4 queued later.
    after = ts + timedelta(minutes=3)
    done_pass = await release_seat_no_shows(store, after, grace=grace)
    assert done_pass.no_shows == [absent["id"]]
    assert done_pass.promoted == [queued_late["id"]]
    assert done_pass.expired == [queued_first["id"]]
    async with engine.connect() as conn:
        status = dict(
            (await conn.execute(select(RESERVATIONS.c.person_id, RESERVATIONS.c.status))).all()
        )
        counter = (await conn.execute(select(TRIP_SEATS))).one()
    assert status == {
        "p0": "boarded",
        "p1": "no_show",
        "p2": "confirmed",
        "p3": "confirmed",
        "p4": "expired",
    }
    assert (counter.confirmed, counter.walk_ons) == (3, 0)
    # A second pass finds nothing more to do.
    assert (await release_seat_no_shows(store, after, grace=grace)).no_shows == []


async def test_walk_ons_fill_free_capacity_and_beyond_it_are_counted_not_refused(
    seats_cloud: RunningCloud,
) -> None:
    http, engine = seats_cloud.http, seats_cloud.app.state.engine
    trip = await future_trip(engine)
    await _reserve(http, trip, "p0")
    ts = datetime.fromtimestamp(trip.departures[0], UTC)
    results = []
    async with engine.begin() as conn:
        for person in ("p1", "p2", "p3", "p3"):
            done = await reservations.mark_boarded(
                conn, trip.trip_id, trip.service_date, person, ts, stop=trip.stops[1], capacity=RULE
            )
            results.append(done.result)
        unknown = await reservations.mark_boarded(conn, "NO-TRIP", trip.service_date, "p1", ts)
        nobody = await reservations.mark_boarded(conn, trip.trip_id, trip.service_date, "ghost", ts)
    assert results == ["walk_on", "walk_on", "walk_on_over", "already_boarded"]
    assert (unknown.result, nobody.result) == ("unknown_trip", "unknown_person")
    seats = (await http.get(_seats_url(trip))).json()
    assert (seats["confirmed"], seats["walk_ons"], seats["walk_ons_over"], seats["free"]) == (
        1,
        2,
        1,
        0,
    )
    # Walk-ons are not reservations: a full trip refuses the next reservation.
    r = await http.post(RESERVE, json=reservation(trip, "p4"))
    assert r.status_code == 409 and r.json()["title"] == "Trip full"


async def test_a_late_boarding_turns_a_released_no_show_back_into_a_boarded_seat(
    seats_cloud: RunningCloud,
) -> None:
    http, engine = seats_cloud.http, seats_cloud.app.state.engine
    store = seats_cloud.app.state.booking_store
    trip = await future_trip(engine)
    booked = await _reserve(http, trip, "p0")
    ts = datetime.fromtimestamp(trip.departures[0], UTC)
    released = await release_seat_no_shows(store, ts + timedelta(hours=1), grace=timedelta(0))
    assert released.no_shows == [booked["id"]]
    # The vehicle was offline: its boarding event (edge time at departure) arrives now.
    async with engine.begin() as conn:
        done = await reservations.mark_boarded(
            conn, trip.trip_id, trip.service_date, "p0", ts, capacity=RULE
        )
    assert (done.result, done.reservation_id) == ("reserved", booked["id"])
    seats = (await http.get(_seats_url(trip))).json()
    assert (seats["confirmed"], seats["walk_ons"]) == (1, 0)


async def test_planned_vehicle_sets_capacity_promotes_and_fills_the_snapshot(
    seats_cloud: RunningCloud,
) -> None:
    http, engine = seats_cloud.http, seats_cloud.app.state.engine
    trip = await future_trip(engine)
    await add_vehicle(engine, "bus-01", "shuttle", 4)
    for i in range(3):
        await _reserve(http, trip, f"p{i}")
    queued = await _reserve(http, trip, "p3", waitlist=True)
    async with engine.begin() as conn:
        assert (
            await seat_vehicles.assign_vehicle(
                conn, trip.trip_id, trip.service_date, "bus-01", RULE
            )
            == 4
        )
    seats = (await http.get(_seats_url(trip))).json()
    assert (seats["vehicle_id"], seats["capacity"], seats["confirmed"], seats["waitlist"]) == (
        "bus-01",
        4,
        4,
        0,
    )
    async with engine.connect() as conn:
        trips, seat_list, cars = await vehicle_snapshot_parts(conn, "bus-01", trip.service_date)
        other = await vehicle_snapshot_parts(conn, "bus-02", trip.service_date)
    assert [(t.trip, t.capacity, t.reserved) for t in trips] == [(trip.trip_id, 4, 4)]
    assert trips[0].start == trip.departures[0]
    assert sorted(s.person for s in seat_list) == ["p0", "p1", "p2", "p3"]
    assert str(queued["id"]) in {s.id for s in seat_list}
    assert cars == [] and other == ([], [], [])
    # Taken off again: the route's capacity (3), but the 4 seats taken stay taken.
    async with engine.begin() as conn:
        await seat_vehicles.unassign_vehicle(conn, trip.trip_id, trip.service_date, RULE)
    seats = (await http.get(_seats_url(trip))).json()
    assert (seats["vehicle_id"], seats["capacity"], seats["free"]) == (None, 4, 0)
    async with engine.connect() as conn:
        assert (await vehicle_snapshot_parts(conn, "bus-01", trip.service_date))[0] == []


async def test_a_cancelled_trip_ends_its_seats_tells_the_riders_and_refuses_new_ones(
    seats_cloud: RunningCloud,
) -> None:
    http = seats_cloud.http
    engine = seats_cloud.app.state.engine
    trip = await future_trip(engine)
    seated = [await _reserve(http, trip, f"p{i}") for i in range(3)]
    queued = await _reserve(http, trip, "p3", waitlist=True)
    other = await future_trip(engine, last=False)
    kept = await _reserve(http, other, "p4")

    cancel = {"trip_id": trip.trip_id, "service_date": trip.service_date}
    r = await http.post("/api/v1/transport/cancellations", json=cancel)
    assert r.status_code == 201, r.text

    async with engine.connect() as conn:
        statuses = dict(
            (await conn.execute(select(RESERVATIONS.c.id, RESERVATIONS.c.status))).all()
        )
        counter = (
            await conn.execute(
                select(TRIP_SEATS.c.confirmed).where(
                    TRIP_SEATS.c.trip_id == trip.trip_id,
                    TRIP_SEATS.c.service_date == trip.service_date,
                )
            )
        ).scalar_one()
        told = (
            await conn.execute(
                select(NOTIFICATIONS.c.person_id).where(NOTIFICATIONS.c.kind == "seat_cancelled")
            )
        ).scalars()
        told_people = sorted(told)
    # Every seat and waitlist place of the cancelled trip ended; the other trip's seat stays.
    assert [statuses[s["id"]] for s in seated] == ["cancelled"] * 3
    assert statuses[queued["id"]] == "cancelled"
    assert statuses[kept["id"]] == "confirmed"
    assert counter == 0
    assert told_people == ["p0", "p1", "p2", "p3"]

    r = await http.post(RESERVE, json=reservation(trip, "p5"))
    assert r.status_code == 409 and r.json()["title"] == "Trip cancelled"
    # Lifting the cancellation opens the trip again.
    path = f"/api/v1/transport/cancellations/{trip.trip_id}/{trip.service_date}"
    assert (await http.delete(path)).status_code in (200, 204)
    assert (await _reserve(http, trip, "p5"))["status"] == "confirmed"
