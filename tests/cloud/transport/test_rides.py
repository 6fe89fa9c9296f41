"""Boardings and pool-car uses applied by ingestion, ridership counted from them, and the
vehicle sections of a vehicle node's snapshot (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.bookings.store import BookingStore
from cloud.db.tables import (
    BADGES,
    CAR_BOOKINGS,
    PEOPLE,
    RESERVATIONS,
    TRANSPORT_BOARDINGS,
    TRANSPORT_CAR_USES,
    TRANSPORT_VEHICLES,
)
from cloud.fleet.snapshots import SnapshotPublisher, SnapshotSigner, build_body
from cloud.ingest.apply import Applier, ApplyResult, Envelope
from cloud.settings import CloudSettings
from cloud.transport import reservations, seat_vehicles
from cloud.transport.ridership import per_trip, refusals, ridership
from cloud.transport.rides import RideWrites
from cloud.transport.schemas_seats import ReservationCreate
from cloud.transport.seat_facts import DEFAULT_RULE
from ruang import contract
from tests.cloud.transport.seat_helpers import TripRef, add_vehicle, future_trip, load_schedule

NOW = time.time()
BADGE = {"p-ride-1": "04A1B2C3", "p-ride-2": "04B1B2C3", "p-ride-3": "04C1B2C3"}


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[tuple[AsyncEngine, TripRef]]:
    await load_schedule(engine)
    await add_vehicle(engine, "shuttle-r1", "shuttle", 12)
    await add_vehicle(engine, "car-r1", "poolcar", 4)
    issued = datetime.fromtimestamp(NOW - 86_400, UTC)
    async with engine.begin() as conn:
        for person, uid in BADGE.items():
            await conn.execute(
                insert(PEOPLE).values(id=person, kind="asn", name=person, role="asn")
            )
            await conn.execute(
                insert(BADGES).values(
                    kind="nfc", uid=uid.lower(), person_id=person, status="active",
                    issued_at=issued,
                )
            )  # fmt: skip
        await conn.execute(
            TRANSPORT_VEHICLES.update()
            .where(TRANSPORT_VEHICLES.c.id == "shuttle-r1")
            .values(node_id="node-shuttle-r1")
        )
        await conn.execute(
            TRANSPORT_VEHICLES.update()
            .where(TRANSPORT_VEHICLES.c.id == "car-r1")
            .values(node_id="node-car-r1")
        )
    trip = await future_trip(engine, days_ahead=0)
    yield engine, trip


def env(msg: contract.Message) -> Envelope:
    kind = contract.kind_of(msg)
    return Envelope(contract.ParsedTopic(msg.node, contract.Channel.EVENTS, kind), msg, NOW)


async def run(applier: Applier, engine: AsyncEngine, msgs: list[contract.Message]) -> ApplyResult:
    async with engine.begin() as conn:
        result = await applier.apply(conn, [env(m) for m in msgs])
    applier.committed(result)
    return result


def boarding(ref: TripRef, person: str | None, **kw: Any) -> contract.Boarding:
    fields: dict[str, Any] = {
        "node": "node-shuttle-r1", "vehicle": "shuttle-r1", "reader": "door-1",
        "badge": BADGE.get(person or "", "DEADBEEF"), "allowed": True, "reason": "walk_on",
        "trip": ref.trip_id, "service_date": ref.service_date, "stop": ref.stops[0],
        "ts": NOW,
    }  # fmt: skip
    return contract.Boarding(**(fields | kw))


async def rows(engine: AsyncEngine, table: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(table))).all())


async def _reserve(engine: AsyncEngine, trip: TripRef, person: str) -> int:
    made = await reservations.reserve(
        BookingStore(engine),
        ReservationCreate(trip_id=trip.trip_id, service_date=trip.service_date,
                          from_stop=trip.stops[-2]),
        person, capacity=DEFAULT_RULE, now=datetime.fromtimestamp(trip.departures[0] - 7200, UTC),
    )  # fmt: skip
    return int(made.id)


async def test_boardings_count_once_use_the_reservation_and_keep_no_raw_badge(
    world: tuple[AsyncEngine, TripRef],
) -> None:
    engine, trip = world
    res = await _reserve(engine, trip, "p-ride-1")
    applier = Applier(engine.dialect.name, rides=RideWrites(engine.dialect.name))
    reserved = boarding(trip, "p-ride-1", reason="reserved", reservation=str(res))
    walk_on = boarding(trip, "p-ride-2", stop=trip.stops[1])
    stranger = boarding(trip, None, allowed=False, reason="unknown_badge")
    first = await run(applier, engine, [reserved, walk_on, stranger, reserved])
    assert first.transport == {
        "boarding.reserved": 1, "boarding.walk_on": 1, "boarding.unknown_badge": 1,
    }  # fmt: skip
    assert first.duplicates == 1
    # A replay of the whole flush (an outbox resend after a lost ack) changes nothing.
    again = await run(applier, engine, [reserved, walk_on, stranger])
    assert again.duplicates == 3 and again.transport == {}

    stored = {r.message_id: r for r in await rows(engine, TRANSPORT_BOARDINGS)}
    assert set(stored) == {reserved.id, walk_on.id, stranger.id}
    assert stored[reserved.id].person_id == "p-ride-1"
    assert stored[reserved.id].outcome == "reserved"
    assert stored[stranger.id].person_id is None
    columns = {c.name for c in TRANSPORT_BOARDINGS.columns}
    assert not {c for c in columns if "badge" in c}
    async with engine.connect() as conn:
        status = await conn.scalar(select(RESERVATIONS.c.status).where(RESERVATIONS.c.id == res))
    assert status == "boarded"

    start = datetime.fromtimestamp(NOW - 3600, UTC)
    end = datetime.fromtimestamp(NOW + 3600, UTC)
    async with engine.connect() as conn:
        counted = await ridership(conn, start, end)
        refused = await refusals(conn, start, end)
    assert sum(r.boardings for r in counted) == 2
    assert {r.stop_id for r in counted} == {trip.stops[0], trip.stops[1]}
    assert per_trip(counted) == {(trip.trip_id, trip.service_date): 2}
    local_hour = datetime.fromtimestamp(NOW, ZoneInfo("Asia/Makassar")).hour
    assert {r.hour for r in counted} == {local_hour}
    assert [(r.reason, r.count) for r in refused] == [("unknown_badge", 1)]


async def test_unknown_vehicle_unknown_trip_and_no_trip_are_recorded_with_a_reason(
    world: tuple[AsyncEngine, TripRef],
) -> None:
    engine, trip = world
    applier = Applier(engine.dialect.name, rides=RideWrites(engine.dialect.name))
    ghost = boarding(trip, "p-ride-1", node="node-ghost", vehicle="ghost-bus")
    nowhere = boarding(trip, "p-ride-2", trip="NO-SUCH-TRIP")
    no_trip = boarding(trip, "p-ride-3", allowed=False, reason="no_trip", trip=None,
                       service_date=None, stop=None)  # fmt: skip
    result = await run(applier, engine, [ghost, nowhere, no_trip])
    assert result.transport == {
        "boarding.unknown_vehicle": 1, "boarding.unknown_trip": 1, "boarding.no_trip": 1,
    }  # fmt: skip
    stored = {r.message_id: r for r in await rows(engine, TRANSPORT_BOARDINGS)}
    assert stored[ghost.id].outcome == "unknown_vehicle"
    assert stored[nowhere.id].outcome == "unknown_trip"
    assert (stored[no_trip.id].allowed, stored[no_trip.id].reason) == (False, "no_trip")


async def test_pool_car_pickup_and_return_move_the_booking_once(
    world: tuple[AsyncEngine, TripRef],
) -> None:
    engine, _ = world
    async with engine.begin() as conn:
        booking = await conn.scalar(
            insert(CAR_BOOKINGS).values(
                vehicle_id="car-r1", person_id="p-ride-1", agency="Otorita IKN",
                purpose="rapat", destination="KIPP", status="approved",
                starts_at=datetime.fromtimestamp(NOW - 600, UTC),
                ends_at=datetime.fromtimestamp(NOW + 3600, UTC),
                created_at=datetime.fromtimestamp(NOW - 86_400, UTC),
            ).returning(CAR_BOOKINGS.c.id)
        )  # fmt: skip
    applier = Applier(engine.dialect.name, rides=RideWrites(engine.dialect.name))

    def use(
        action: str, reason: str, at: float, ref: str | None = str(booking)
    ) -> contract.PoolCarUse:
        return contract.PoolCarUse(
            node="node-car-r1", vehicle="car-r1", reader="reader-1", badge=BADGE["p-ride-1"],
            action=action, reason=reason, booking=ref, ts=at,  # type: ignore[arg-type]
        )  # fmt: skip

    pickup, back = use("pickup", "booked", NOW), use("return", "returned", NOW + 1800)
    refused = use("refused", "no_booking", NOW + 5, ref=None)
    result = await run(applier, engine, [pickup, refused, back, pickup])
    assert result.transport == {
        "poolcar.picked_up": 1, "poolcar.no_booking": 1, "poolcar.returned": 1,
    }  # fmt: skip
    async with engine.connect() as conn:
        row = (await conn.execute(select(CAR_BOOKINGS).where(CAR_BOOKINGS.c.id == booking))).one()
        uses = await conn.scalar(select(func.count()).select_from(TRANSPORT_CAR_USES))
    assert row.status == "returned"
    assert row.picked_up_at.timestamp() == pytest.approx(NOW)
    assert row.returned_at.timestamp() == pytest.approx(NOW + 1800)
    assert uses == 3


async def test_vehicle_node_snapshot_has_its_trips_stops_seats_and_badges(
    world: tuple[AsyncEngine, TripRef], tmp_path: Any
) -> None:
    engine, trip = world
    async with engine.begin() as conn:
        await seat_vehicles.assign_vehicle(
            conn, trip.trip_id, trip.service_date, "shuttle-r1", DEFAULT_RULE
        )
    res = await _reserve(engine, trip, "p-ride-2")
    now = datetime.fromtimestamp(trip.departures[0] - 3600, UTC)
    async with engine.connect() as conn:
        body = await build_body(conn, "node-shuttle-r1", now, 7)
    assert body.vehicle == contract.SnapshotVehicle(
        vehicle="shuttle-r1", kind="shuttle", capacity=12
    )
    (snap_trip,) = [t for t in body.trips if t.trip == trip.trip_id]
    assert (snap_trip.capacity, snap_trip.reserved) == (12, 1)
    assert [s.stop for s in snap_trip.stops] == list(trip.stops)
    assert all(-2 < s.lat < 0 and 116 < s.lon < 118 for s in snap_trip.stops)
    assert [(s.id, s.person) for s in body.seats] == [(str(res), "p-ride-2")]
    # The shuttle serves every ASN: all three riders' badges, as the edge names them.
    assert {b.badge for b in body.badges} >= set(BADGE.values())

    # A pool car's node gets only its bookings' holders.
    async with engine.begin() as conn:
        await conn.execute(
            insert(CAR_BOOKINGS).values(
                vehicle_id="car-r1", person_id="p-ride-3", agency="Otorita IKN",
                purpose="rapat", destination="KIPP", status="approved",
                starts_at=now, ends_at=now + timedelta(hours=2), created_at=now,
            )
        )  # fmt: skip
    async with engine.connect() as conn:
        car = await build_body(conn, "node-car-r1", now, 8)
    assert [b.badge for b in car.badges] == [BADGE["p-ride-3"]]
    assert [c.person for c in car.car_bookings] == ["p-ride-3"]

    # The publisher notices a new reservation on a vehicle's trip by itself.
    settings = CloudSettings(database_url="sqlite+aiosqlite:///unused.sqlite3")
    publisher = SnapshotPublisher(
        settings, engine, commands=None,  # type: ignore[arg-type]
        signer=SnapshotSigner.from_path(tmp_path / "snap.key"), clock=lambda: now.timestamp(),
    )  # fmt: skip
    async with engine.connect() as conn:
        for node in ("node-shuttle-r1", "node-car-r1"):
            await publisher.snapshot_for(conn, node)
    assert await publisher.vehicles_changed() == set()
    await _reserve(engine, trip, "p-ride-3")
    assert await publisher.vehicles_changed() == {"node-shuttle-r1"}
