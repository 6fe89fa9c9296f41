"""The live transport service on a real database with the sample IKN schedule: positions
-> matched trip -> stop events stored -> ETAs, departures and GTFS-RT (validated)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.tables import (
    CAR_BOOKINGS,
    CAR_POSITIONS,
    PEOPLE,
    SITES,
    TRANSPORT_BOARDINGS,
    TRANSPORT_STOP_EVENTS,
    TRANSPORT_VEHICLES,
    TRIP_SEATS,
)
from cloud.transport import departures, dispatch, schedule
from cloud.transport.gtfs_export import export_gtfs, sample_zip
from cloud.transport.gtfs_import import import_gtfs
from cloud.transport.live import LiveService
from cloud.transport.plan import TripPlan
from cloud.transport.schemas_live import AssignmentCreate, CancellationCreate
from cloud.transport.seat_facts import CapacityRule
from ruang import contract
from simulators.shuttle import ShuttleRun, seeded_traffic
from tests.cloud.transport.live_helpers import add_vehicle, positions
from tests.cloud.transport.rt_validation import validate_feeds

DAY = "20261207"  # a Monday
TRIP = "K1-0-0800"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def sample(engine: AsyncEngine) -> AsyncEngine:
    await import_gtfs(engine, sample_zip())
    await add_vehicle(engine, "BUS-01", "veh-node-01")
    await add_vehicle(engine, "BUS-02", "veh-node-02")
    return engine


async def plan_of(engine: AsyncEngine, trip: str) -> TripPlan:
    async with engine.connect() as conn:
        plan = await schedule.trip_plan(conn, trip, DAY)
    assert plan is not None
    return plan


async def service_at(engine: AsyncEngine, t: float) -> tuple[LiveService, Clock]:
    clock = Clock(t)
    live = LiveService(engine, clock=clock)
    await live.refresh()
    return live, clock


async def drive(
    live: LiveService, clock: Clock, run: ShuttleRun, until: float | None = None
) -> None:
    for p in positions(run, "veh-node-01", "BUS-01", until=until):
        clock.t = p.ts + 1
        live.process(p, False)


async def test_a_vehicle_is_matched_to_its_trip_and_its_stop_events_are_stored(
    sample: AsyncEngine,
) -> None:
    plan = await plan_of(sample, TRIP)
    run = ShuttleRun(plan, traffic=seeded_traffic(4, len(plan.stops) - 1))
    live, clock = await service_at(sample, run.t0)
    events = []
    for p in positions(run, "veh-node-01", "BUS-01"):
        clock.t = p.ts + 1
        vid, evs = live.process(p, False)
        assert vid == "BUS-01"
        events += evs
    tracker = live.trackers["BUS-01"]
    assert (TRIP, DAY) in tracker.completed and not tracker.assigned
    # Standing at the terminal, it is then matched to the return trip leaving from there.
    assert tracker.trip is not None and tracker.trip.trip_id == "K1-1-0815"
    assert {e.trip_id for e in events} == {TRIP, "K1-1-0815"}
    await live._persist([("BUS-01", e) for e in events])
    async with sample.connect() as conn:
        rows = list(
            await conn.execute(
                select(TRANSPORT_STOP_EVENTS)
                .where(TRANSPORT_STOP_EVENTS.c.trip_id == TRIP)
                .order_by(TRANSPORT_STOP_EVENTS.c.stop_sequence)
            )
        )
    assert [r.stop_id for r in rows] == [s.stop_id for s in plan.stops]
    for row, truth in zip(rows, run.truth, strict=True):
        assert row.trip_id == TRIP and row.vehicle_id == "BUS-01" and row.stopped
        assert row.arrival_at.timestamp() == pytest.approx(truth.arrival, abs=5.01)
    assert rows[-1].departure_at is None
    # Replaying the same fixes (an outbox replay) changes nothing.
    before = tracker.completed.copy()
    for p in positions(run, "veh-node-01", "BUS-01"):
        live.process(p, True)
    assert tracker.completed == before
    assert live.rejects["fix_duplicate"] > 0


async def test_unknown_vehicles_are_counted_and_node_binding_finds_the_vehicle(
    sample: AsyncEngine,
) -> None:
    plan = await plan_of(sample, TRIP)
    run = ShuttleRun(plan)
    live, _ = await service_at(sample, run.t0)
    first = next(positions(run, "stranger-node", "NO-SUCH-BUS"))
    assert live.process(first, False) == (None, [])
    assert live.rejects["unknown_vehicle"] == 1
    # The GPS device id is not a vehicle id, but the node rides in BUS-02.
    by_node = next(positions(run, "veh-node-02", "gps-0"))
    assert live.process(by_node, False)[0] == "BUS-02"


async def test_gtfs_realtime_of_the_live_service_passes_the_validator(
    sample: AsyncEngine, tmp_path: Path
) -> None:
    plan = await plan_of(sample, TRIP)
    run = ShuttleRun(plan, traffic=seeded_traffic(9, len(plan.stops) - 1))
    live, clock = await service_at(sample, run.t0)
    async with sample.begin() as conn:
        await dispatch.assign(
            conn,
            AssignmentCreate(vehicle="BUS-01", trip_id=TRIP, service_date=DAY),
            CapacityRule(30, {}),
        )
        await dispatch.cancel(conn, CancellationCreate(trip_id="K1-0-0815", service_date=DAY))
    await live.refresh()
    midway = run.truth[2].departure + 30
    await drive(live, clock, run, until=midway)
    tracker = live.trackers["BUS-01"]
    assert tracker.assigned and tracker.trip is not None and tracker.trip.trip_id == TRIP
    now = clock.t
    vp, tu = live.vehicle_positions(now), live.trip_updates(now)
    assert [e.id for e in vp.entity] == ["vehicle:BUS-01"]
    assert {e.id for e in tu.entity} == {f"trip:{TRIP}:{DAY}", f"trip:K1-0-0815:{DAY}"}
    async with sample.connect() as conn:
        gtfs = tmp_path / "gtfs.zip"
        gtfs.write_bytes(await export_gtfs(conn))
    report = validate_feeds(
        gtfs,
        {"tu": tu.SerializeToString(), "vp": vp.SerializeToString()},
        tmp_path,
        at=now + 2,
    )
    assert report["errors"] == [], report["errors"]
    assert report["system_errors"].get("notices", []) == []


async def test_departures_board_has_live_etas_delays_and_cancellations(
    sample: AsyncEngine,
) -> None:
    plan = await plan_of(sample, TRIP)
    jam = [3.0] + [1.0] * (len(plan.stops) - 2)  # stuck in traffic on the first segment
    run = ShuttleRun(plan, traffic=jam)
    live, clock = await service_at(sample, run.t0)
    async with sample.begin() as conn:
        await dispatch.cancel(conn, CancellationCreate(trip_id="K1-0-0815", service_date=DAY))
    await live.refresh()
    await drive(live, clock, run, until=run.truth[0].departure + 200)
    stop = plan.stops[2]
    async with sample.connect() as conn:
        board = await departures.board(conn, live, stop.stop_id, 5, clock.t)
    rows = {d.trip: d for d in board.departures}
    mine = rows[TRIP]
    assert mine.live and mine.vehicle == "BUS-01"
    assert mine.status == "delayed" and mine.delayed and mine.delay_s is not None
    assert mine.delay_s >= 120
    assert rows["K1-0-0815"].status == "cancelled" and rows["K1-0-0815"].expected_at is None
    later = [d for d in board.departures if d.trip not in (TRIP, "K1-0-0815")]
    assert later and all(d.status == "scheduled" and not d.live for d in later)
    times = [d.scheduled_at for d in board.departures]
    assert times == sorted(times)


async def test_pool_car_fixes_reach_the_trip_log_and_full_trips_show_on_the_board(
    sample: AsyncEngine,
) -> None:
    t0 = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)  # 09:00 WITA
    async with sample.begin() as conn:
        await conn.execute(SITES.insert().values(id="ikn-kipp", name="KIPP"))
        await conn.execute(
            PEOPLE.insert().values(
                id="p-asn", kind="asn", name="Ayu", role="asn", site_id="ikn-kipp"
            )
        )
        await conn.execute(
            TRANSPORT_VEHICLES.insert().values(
                id="CAR-01", kind="poolcar", label="Avanza", capacity=6, seats=6, plate="KT 1 RI",
                site_id="ikn-kipp", node_id="car-node-01", state="in_service",
                state_changed_at=t0, created_at=t0, wheelchair_accessible=False,
            )
        )  # fmt: skip
        booking = await conn.scalar(
            CAR_BOOKINGS.insert()
            .values(
                vehicle_id="CAR-01", person_id="p-asn", purpose="rapat", destination="KIPP",
                starts_at=t0, ends_at=t0 + dt.timedelta(hours=2), status="picked_up",
                created_at=t0, picked_up_at=t0,
            )
            .returning(CAR_BOOKINGS.c.id)
        )  # fmt: skip
        # Every seat of the 08:00 trip is taken.
        plan = await schedule.trip_plan(conn, TRIP, DAY)
        assert plan is not None
        await conn.execute(
            TRIP_SEATS.insert().values(
                trip_id=TRIP, service_date=DAY, capacity=20, confirmed=18, walk_ons=2,
                departs_at=dt.datetime.fromtimestamp(plan.start, dt.UTC),
                arrives_at=dt.datetime.fromtimestamp(plan.end, dt.UTC),
            )
        )  # fmt: skip
    live, _ = await service_at(sample, t0.timestamp() + 60)
    await live.start()
    try:
        for i in range(3):
            live.offer(
                contract.Position(
                    node="car-node-01",
                    vehicle="gps-car",
                    ts=t0.timestamp() + 30 * i,
                    lat=-0.97 + 0.001 * i,
                    lon=116.70,
                    speed_kmh=20.0,
                    fix_quality=1,
                ),
                False,
            )
        async with asyncio.timeout(10):
            await live.drained()
    finally:
        await live.stop()
    async with sample.connect() as conn:
        kept = await conn.scalar(select(func.count()).where(CAR_POSITIONS.c.booking_id == booking))
        board = await departures.board(conn, live, plan.stops[0].stop_id, 3, plan.start - 600)
    assert kept == 3
    first = next(d for d in board.departures if d.trip == TRIP)
    assert first.full and not first.cancelled
    assert not any(d.full for d in board.departures if d.trip != TRIP)


async def test_the_dispatcher_sees_the_riders_boarded_on_each_running_trip(
    sample: AsyncEngine,
) -> None:
    plan = await plan_of(sample, TRIP)
    run = ShuttleRun(plan, traffic=seeded_traffic(4, len(plan.stops) - 1))
    live, clock = await service_at(sample, run.t0)
    await drive(live, clock, run, until=run.t0 + 600)
    assert live.live_vehicle(live.vehicles["BUS-01"], clock.t).load == 0
    at = dt.datetime.fromtimestamp(run.t0 + 300, dt.UTC)
    rows = [
        # Two riders let on, one refused (full), one on another trip: the load is 2.
        ("m-1", TRIP, DAY, True),
        ("m-2", TRIP, DAY, True),
        ("m-3", TRIP, DAY, False),
        ("m-4", "K2-0-0800", DAY, True),
    ]
    async with sample.begin() as conn:
        for mid, trip, day, allowed in rows:
            await conn.execute(
                TRANSPORT_BOARDINGS.insert().values(
                    message_id=mid,
                    node="veh-node-01",
                    vehicle_id="BUS-01",
                    reader="door-1",
                    ts=at,
                    hour=8,
                    trip_id=trip,
                    service_date=day,
                    allowed=allowed,
                    reason="walk_on" if allowed else "full",
                )
            )
    await live.refresh_loads()
    vehicle = live.live_vehicle(live.vehicles["BUS-01"], clock.t)
    assert vehicle.trip == TRIP and vehicle.load == 2
    assert live.live_vehicle(live.vehicles["BUS-02"], clock.t).load is None  # no trip
