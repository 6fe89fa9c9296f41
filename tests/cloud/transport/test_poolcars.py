"""Pool cars: racing requests for one car and time give one booking (both databases, real
uvicorn); approvers decide their agency's requests only; pick-up, positions and return give a
trip log with the haversine distance; overdue and unreturned alarms show in the API."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, update

from cloud.db.engine import make_engine
from cloud.db.tables import CAR_BOOKINGS, NODES, TRANSPORT_VEHICLES
from cloud.settings import CloudSettings
from cloud.transport import poolcars
from cloud.transport.car_trips import haversine_m, record_car_position
from tests.cloud.conftest import start_cloud
from tests.cloud.transport.seat_helpers import add_vehicle, import_people, load_schedule
from tests.cloud.transport.test_seat_concurrency import http_server
from tests.helpers import auth_headers

BOOK = "/api/v1/transport/car-bookings"
RACERS = 50


def _car(
    person: str | None, start: datetime, hours: float = 2, car: str = "car-01"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "vehicle_id": car,
        "purpose": "Rapat koordinasi",
        "destination": "Kantor Otorita IKN",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=hours)).isoformat(),
    }
    if person is not None:
        body["person_id"] = person
    return body


def _tomorrow(hour: int) -> datetime:
    day = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    return day.replace(hour=hour)


async def test_racing_requests_for_one_car_and_time_make_exactly_one_booking(
    settings: CloudSettings,
) -> None:
    engine = make_engine(settings.database_url)
    try:
        async with http_server(settings) as client:
            await load_schedule(engine)
            await add_vehicle(engine, "car-01", "poolcar", 5)
            people = [f"driver-{i:02d}" for i in range(RACERS)]
            await import_people(client, people)
            go = asyncio.Event()
            # Each racer wants a different but overlapping window of the same car.
            start = _tomorrow(2)

            async def one(i: int) -> httpx.Response:
                await go.wait()
                body = _car(people[i], start + timedelta(minutes=i), hours=1)
                return await client.post(BOOK, json=body)

            tasks = [asyncio.create_task(one(i)) for i in range(RACERS)]
            await asyncio.sleep(0)
            go.set()
            responses = await asyncio.gather(*tasks)
            statuses = Counter(r.status_code for r in responses)
            assert statuses == {201: 1, 409: RACERS - 1}, statuses
            assert {r.json()["title"] for r in responses if r.status_code == 409} == {
                "Car already booked for that time"
            }
            listed = (await client.get(BOOK, params={"vehicle": "car-01"})).json()
            assert [b["status"] for b in listed] == ["requested"]
            # A rejected request frees the car for the same time.
            r = await client.post(f"{BOOK}/{listed[0]['id']}/reject", json={"note": "penuh"})
            assert r.status_code == 200 and r.json()["status"] == "rejected"
            r = await client.post(BOOK, json=_car(people[1], start, hours=1))
            assert r.status_code == 201, r.text
    finally:
        await engine.dispose()


async def test_approvers_decide_their_own_agency_and_trip_log_on_return(
    settings: CloudSettings,
) -> None:
    async with start_cloud(settings) as cloud:
        http, engine = cloud.http, cloud.app.state.engine
        await load_schedule(engine)
        await add_vehicle(engine, "car-01", "poolcar", 5)
        await import_people(http, ["asn-a", "appr-a"], agency="Otorita IKN")
        await import_people(http, ["appr-b"], agency="Kementerian PUPR")
        asn = auth_headers(settings, "asn-a", ("asn",))
        start = datetime.now(UTC) + timedelta(minutes=5)
        r = await http.post(BOOK, json=_car(None, start), headers=asn)
        assert r.status_code == 201, r.text
        booking = r.json()
        assert (booking["status"], booking["agency"], booking["person_id"]) == (
            "requested",
            "Otorita IKN",
            "asn-a",
        )
        url = f"{BOOK}/{booking['id']}"
        other = auth_headers(settings, "appr-b", ("approver",))
        assert (await http.post(f"{url}/approve", headers=asn)).status_code == 403
        assert (await http.post(f"{url}/approve", headers=other)).status_code == 403
        assert (await http.get(BOOK, headers=other)).json() == []
        mine = auth_headers(settings, "appr-a", ("approver",))
        assert [b["id"] for b in (await http.get(BOOK, headers=mine)).json()] == [booking["id"]]
        r = await http.post(f"{url}/approve", headers=mine, json={"note": "ok"})
        assert r.status_code == 200 and r.json()["status"] == "approved"
        assert r.json()["decided_by"] == "appr-a"
        r = await http.post(f"{url}/approve", headers=mine)
        assert r.status_code == 409

        # The car's node: pick-up, fixes while out, return (edge times).
        t0 = start + timedelta(minutes=1)
        route = [(-0.9700, 116.7000), (-0.9650, 116.7050), (-0.9600, 116.7120)]
        async with engine.begin() as conn:
            before = await record_car_position(conn, "car-01", t0 - timedelta(hours=3), -1.0, 116.0)
            assert before is False  # parked at the depot, nobody's trip: not kept
            assert await poolcars.record_pickup(conn, booking["id"], "car-02", t0) == "wrong_car"
            assert await poolcars.record_pickup(conn, booking["id"], "car-01", t0) == "picked_up"
            assert await poolcars.record_pickup(conn, booking["id"], "car-01", t0) == "duplicate"
            for i, (lat, lon) in enumerate(route[:2]):
                assert await record_car_position(
                    conn, "car-01", t0 + timedelta(minutes=i), lat, lon
                )
            assert (
                await poolcars.record_return(
                    conn, booking["id"], "car-01", t0 + timedelta(minutes=30)
                )
                == "returned"
            )
            # A fix drained late from the car's backlog still lands in the log.
            assert await record_car_position(conn, "car-01", t0 + timedelta(minutes=2), *route[2])
            assert await poolcars.record_return(conn, booking["id"], "car-01", t0) == "duplicate"
        expected = haversine_m(*route[0], *route[1]) + haversine_m(*route[1], *route[2])
        trips = (
            await http.get("/api/v1/transport/car-trips", params={"trace": "true"}, headers=asn)
        ).json()
        assert len(trips) == 1
        assert abs(trips[0]["distance_m"] - expected) < 0.01
        assert 1_500 < expected < 2_000
        assert [(p["lat"], p["lon"]) for p in trips[0]["trace"]] == route
        assert datetime.fromisoformat(trips[0]["started_at"]) == t0
        assert datetime.fromisoformat(trips[0]["ended_at"]) == t0 + timedelta(minutes=30)
        assert (await http.get("/api/v1/transport/car-trips", headers=other)).json() == []
        r = await http.get("/api/v1/transport/car-trips", params={"booking": 999}, headers=asn)
        assert r.status_code == 404


async def test_overdue_and_unreturned_alarms(settings: CloudSettings) -> None:
    settings = settings.model_copy(update={"poolcar_unreturned_after_h": 1.0})
    async with start_cloud(settings) as cloud:
        http, engine = cloud.http, cloud.app.state.engine
        await load_schedule(engine)
        for car in ("car-01", "car-02", "car-03"):
            await add_vehicle(engine, car, "poolcar", 5)
        await import_people(http, ["asn-a"])
        now = datetime.now(UTC)
        ids = {}
        for car in ("car-01", "car-02", "car-03"):
            r = await http.post(BOOK, json=_car("asn-a", now + timedelta(minutes=1), 1, car))
            ids[car] = r.json()["id"]
            assert (await http.post(f"{BOOK}/{ids[car]}/approve")).status_code == 200
            async with engine.begin() as conn:
                await poolcars.record_pickup(conn, ids[car], car, now)
        # car-01 is due back later, car-02 ended 30 min ago, car-03 three hours ago.
        async with engine.begin() as conn:
            for car, ended in (("car-02", 30), ("car-03", 180)):
                await conn.execute(
                    update(CAR_BOOKINGS)
                    .where(CAR_BOOKINGS.c.id == ids[car])
                    .values(
                        starts_at=now - timedelta(minutes=ended + 60),
                        ends_at=now - timedelta(minutes=ended),
                    )
                )
        listed = {b["vehicle_id"]: b["alarm"] for b in (await http.get(BOOK)).json()}
        assert listed == {"car-01": None, "car-02": "overdue", "car-03": "unreturned"}
        overdue = (await http.get(BOOK, params={"alarm": "overdue"})).json()
        assert [b["vehicle_id"] for b in overdue] == ["car-02"]
        async with engine.connect() as conn:
            alarms = await poolcars.car_alarms(conn, timedelta(hours=1))
        assert [(a.vehicle_id, a.alarm) for a in alarms] == [
            ("car-03", "unreturned"),
            ("car-02", "overdue"),
        ]
        # The fleet view flags the node riding in each late car.
        async with engine.begin() as conn:
            for n, car in enumerate(("car-01", "car-02", "car-03")):
                await conn.execute(insert(NODES).values(id=f"car-node-{n}", online=True))
                await conn.execute(
                    update(TRANSPORT_VEHICLES)
                    .where(TRANSPORT_VEHICLES.c.id == car)
                    .values(node_id=f"car-node-{n}")
                )
        fleet = {n["id"]: n for n in (await http.get("/api/v1/fleet/nodes")).json()}
        assert fleet["car-node-0"]["state"] == "ok"
        assert [r["code"] for r in fleet["car-node-1"]["reasons"]] == ["poolcar_overdue"]
        assert fleet["car-node-1"]["state"] == "warning"
        node = (await http.get("/api/v1/fleet/nodes/car-node-2")).json()
        assert (node["state"], node["reasons"][0]["code"]) == ("alarm", "poolcar_unreturned")
        # Returned, the alarm is gone.
        async with engine.begin() as conn:
            assert await poolcars.record_return(conn, ids["car-03"], "car-03", now) == "returned"
        r = await http.get(BOOK, params={"alarm": "unreturned"})
        assert r.json() == []
        node = (await http.get("/api/v1/fleet/nodes/car-node-2")).json()
        assert node["state"] == "ok"
