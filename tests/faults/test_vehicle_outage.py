"""A shuttle and a pool car whose uplink is down for an hour of (accelerated) service.

Two vehicle nodes run the real edge agent with their door readers and the
shuttle's GNSS receiver on ptys, against a real Mosquitto and the real cloud
(uvicorn + ingestion on SQLite). The cloud plans the shuttle on two trips of a
small schedule that ran within the last hour and a half, takes reservations and
approves a pool-car booking, and publishes the vehicles' signed snapshots.

The hour is played twice, into two fresh clouds: once with the broker up all
along, once with it down from the first tap to the last, the nodes deciding
every boarding and pick-up alone and draining their outboxes when the broker
returns. Ridership per trip, stop and hour, the refusals, the reservations used
and the pool car's trip log must come out the same, number for number.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sqlite3
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from cloud.bookings.store import BookingStore
from cloud.db.engine import make_engine
from cloud.db.tables import (
    BADGES,
    CAR_BOOKINGS,
    PEOPLE,
    RESERVATIONS,
    SITES,
    TRANSPORT_BOARDINGS,
    TRANSPORT_CAR_USES,
    TRANSPORT_VEHICLES,
)
from cloud.transport import reservations, seat_vehicles
from cloud.transport.gtfs_import import import_gtfs
from cloud.transport.ridership import refusals, ridership
from cloud.transport.schemas_seats import ReservationCreate
from cloud.transport.seat_facts import DEFAULT_RULE
from edge.agent import EdgeAgent
from edge.devices.gps import GpsConfig
from edge.settings import EdgeSettings
from edge.vehicle import Vehicle
from edge.vehicle_config import DoorReaderConfig, VehicleConfig
from launch import devservers
from simulators.deskunit import DeskUnitSimulator
from simulators.riders import ParkedGps, RiderTap, StopPlace, badge_of, door_reader, play
from tests.faults.support import Cloud, running_cloud
from tests.helpers import eventually

pytestmark = pytest.mark.servers

WITA = ZoneInfo("Asia/Makassar")
SHUTTLE, CAR = "shuttle-o1", "car-o1"  # each node is named after its vehicle
STOPS = (
    StopPlace("O-HUNIAN", -0.9900, 116.6900),
    StopPlace("O-TENGAH", -0.9820, 116.6970),
    StopPlace("O-KIPP", -0.9740, 116.7040),
)
LEG_S = 600  # ten minutes between stops
# Minutes before "now" at which the two trips leave their first stop: both have
# ended before the test taps (the cloud takes no event from its future), and the
# scenario spans an hour of the shuttle's day.
TRIP_STARTS_MIN = (65, 35)
RIDERS = 9  # badge_of(0..8); 0 and 1 hold reservations; 8 has the pool-car booking


@dataclass(frozen=True)
class Day:
    """The trips of the hour: (trip id, service date, start) in Unix seconds."""

    trips: tuple[tuple[str, str, float], ...]

    @property
    def start(self) -> float:
        return self.trips[0][2]


def _plan(now: float) -> Day:
    trips = []
    for n, minutes in enumerate(TRIP_STARTS_MIN):
        start = float(int(now) - minutes * 60)
        trips.append((f"O-{n + 1}", datetime.fromtimestamp(start, WITA).strftime("%Y%m%d"), start))
    return Day(tuple(trips))


def _gtfs(day: Day) -> bytes:
    """A one-route schedule running exactly the day's trips (every day of the year)."""

    def hms(seconds: float) -> str:
        s = int(seconds)
        return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"

    trips, times = [], []
    for trip_id, date, start in day.trips:
        midnight = datetime.strptime(date, "%Y%m%d").replace(tzinfo=WITA).timestamp()
        trips.append(f"O,ALL,{trip_id},KIPP,0")
        for i, stop in enumerate(STOPS):
            at = hms(start - midnight + i * LEG_S)
            times.append(f"{trip_id},{at},{at},{stop.stop},{i + 1}")
    year = datetime.fromtimestamp(day.start, WITA).year
    files = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
        "OA,Shuttle uji,https://example.org/,Asia/Makassar\n",
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n"
        + "".join(f"{s.stop},{s.stop},{s.lat},{s.lon}\n" for s in STOPS),
        "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\n"
        "O,OA,O,Uji,3\n",
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
        f"start_date,end_date\nALL,1,1,1,1,1,1,1,{year - 1}0101,{year + 1}1231\n",
        "trips.txt": "route_id,service_id,trip_id,trip_headsign,direction_id\n"
        + "".join(t + "\n" for t in trips),
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        + "".join(t + "\n" for t in times),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


def scenario(day: Day) -> tuple[list[RiderTap], list[RiderTap]]:
    """(shuttle taps, pool-car taps), in seconds from the day's start."""
    t1, t2 = day.trips[0][2] - day.start, day.trips[1][2] - day.start
    a, b, c = (s.stop for s in STOPS)
    shuttle = [
        RiderTap(t1 - 900, a, badge_of(2)),  # before any trip's window: no trip
        RiderTap(t1 - 120, a, badge_of(0)),  # reserved on trip 1
        RiderTap(t1 - 60, a, badge_of(2)),  # walk-on
        RiderTap(t1 - 50, a, badge_of(3)),  # walk-on
        RiderTap(t1 - 40, a, "DEADBEEF"),  # unknown badge
        RiderTap(t1 - 30, a, badge_of(2)),  # taps again: answered, not counted
        RiderTap(t1 + LEG_S - 30, b, badge_of(4)),  # walk-on: the last free place
        RiderTap(t1 + LEG_S - 20, b, badge_of(5)),  # full
        RiderTap(t2 - 60, a, badge_of(6)),  # trip 2: walk-on
        RiderTap(t2 + LEG_S - 40, b, badge_of(1)),  # reserved on trip 2 from the 2nd stop
        RiderTap(t2 + 2 * LEG_S - 50, c, badge_of(7)),  # walk-on at the last stop
    ]
    car = [
        RiderTap(t1 + 60, None, badge_of(7)),  # no booking: not on the car's allow-list
        RiderTap(t1 + 120, None, badge_of(8)),  # pick-up
        RiderTap(t2 + 2 * LEG_S - 120, None, badge_of(8)),  # return
    ]
    return shuttle, car


async def _seed(db_path: Path, day: Day) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{db_path}")
    try:
        await import_gtfs(engine, _gtfs(day))
        issued = datetime.fromtimestamp(day.start - 86_400, UTC)
        async with engine.begin() as conn:
            await conn.execute(
                insert(PEOPLE),
                [{"id": f"p-{i}", "kind": "asn", "name": f"Rider {i}", "role": "asn"}
                 for i in range(RIDERS)],
            )  # fmt: skip
            await conn.execute(
                insert(BADGES),
                [{"kind": "nfc", "uid": badge_of(i), "person_id": f"p-{i}", "status": "active",
                  "issued_at": issued} for i in range(RIDERS)],
            )  # fmt: skip
            # The sample layout's site is not loaded here: the pool car's home site must exist.
            await conn.execute(
                insert(TRANSPORT_VEHICLES),
                [{"id": SHUTTLE, "kind": "shuttle", "label": SHUTTLE, "capacity": 4, "seats": 4,
                  "wheelchair_accessible": False, "node_id": SHUTTLE, "state": "in_service",
                  "state_changed_at": issued, "created_at": issued}],
            )  # fmt: skip
        await _seed_car(engine, day, issued)
        async with engine.begin() as conn:
            for trip_id, date, _ in day.trips:
                await seat_vehicles.assign_vehicle(conn, trip_id, date, SHUTTLE, DEFAULT_RULE)
        store = BookingStore(engine)
        for person, (trip_id, date, start), stop in (
            ("p-0", day.trips[0], STOPS[0].stop),
            ("p-1", day.trips[1], STOPS[1].stop),
        ):
            await reservations.reserve(
                store,
                ReservationCreate(trip_id=trip_id, service_date=date, from_stop=stop),
                person, capacity=DEFAULT_RULE, now=datetime.fromtimestamp(start - 7200, UTC),
            )  # fmt: skip
    finally:
        await engine.dispose()


async def _seed_car(engine: Any, day: Day, issued: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(SITES).values(
                id="S-O", name="Site", timezone="Asia/Makassar", max_booking_hours=10,
                max_days_ahead=14, one_desk_per_person_per_slot=False, checkin_grace_min=15,
                away_release_min=30,
            )
        )  # fmt: skip
        await conn.execute(
            insert(TRANSPORT_VEHICLES).values(
                id=CAR, kind="poolcar", label=CAR, capacity=4, seats=4,
                wheelchair_accessible=False, plate="KT 1 O", site_id="S-O", node_id=CAR,
                state="at_depot", state_changed_at=issued, created_at=issued,
            )
        )  # fmt: skip
        await conn.execute(
            insert(CAR_BOOKINGS).values(
                vehicle_id=CAR, person_id="p-8", agency=None, purpose="rapat",
                destination="KIPP", status="approved", created_at=issued,
                starts_at=datetime.fromtimestamp(day.start, UTC),
                ends_at=datetime.fromtimestamp(day.start + 3600, UTC),
            )
        )  # fmt: skip


def _settings(tmp_path: Path, node: str, url: str, reader: str, gps: str | None) -> EdgeSettings:
    return EdgeSettings(
        node_id=node, mqtt_url=url, state_dir=tmp_path / node,
        snapshot_public_key=tmp_path / "snapshot.pub",
        event_ack_timeout_s=5.0,
        gps=[GpsConfig(device="gps-1", vehicle=node, port=gps, publish_interval_s=0.5)]
        if gps else [],
        vehicle=VehicleConfig(
            vehicle=node, kind="shuttle" if node == SHUTTLE else "poolcar",
            readers=[DoorReaderConfig(id="door-1", port=reader)],
        ),
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _agents(
    tmp_path: Path, url: str, shuttle_reader: str, car_reader: str, gps: str
) -> AsyncIterator[tuple[EdgeAgent, EdgeAgent]]:
    shuttle = EdgeAgent(_settings(tmp_path, SHUTTLE, url, shuttle_reader, gps))
    car = EdgeAgent(_settings(tmp_path, CAR, url, car_reader, None))
    async with shuttle, car:
        yield shuttle, car


def _vehicle(agent: EdgeAgent) -> Vehicle:
    assert agent.vehicle is not None
    return agent.vehicle


async def _play(
    vehicle: Vehicle,
    taps: list[RiderTap],
    reader: DeskUnitSimulator,
    start: float,
    parked: ParkedGps | None,
) -> None:
    clock = [start]
    vehicle.clock = lambda: clock[0]

    def set_clock(t: float) -> None:
        clock[0] = t

    async def place(stop: str | None) -> None:
        if parked is None or stop is None:
            return
        lat, lon = parked.park(stop)

        async def there() -> bool:
            fix = vehicle.fix()
            return fix is not None and abs(fix[0] - lat) < 1e-4 and abs(fix[1] - lon) < 1e-4

        await eventually(there, what=f"the vehicle's fix at {stop}")

    async def decided(n: int) -> None:
        async def done() -> bool:
            return vehicle.decided >= n

        await eventually(done, what=f"tap {n} decided")

    await play(taps, {"door-1": reader}, start=start, place=place, set_clock=set_clock,
               decided=decided)  # fmt: skip


_COUNT_SQL = {
    TRANSPORT_BOARDINGS.name: "SELECT count(*) FROM transport_boardings",
    TRANSPORT_CAR_USES.name: "SELECT count(*) FROM transport_car_uses",
}


def _count(db_path: Path, table: Any) -> int:
    with contextlib.closing(sqlite3.connect(db_path, timeout=10)) as db:
        (n,) = db.execute(_COUNT_SQL[table.name]).fetchone()
    return int(n)


async def _outcome(cloud: Cloud, day: Day) -> dict[str, Any]:
    """Everything the hour left in the cloud, comparable between two runs."""
    engine = make_engine(f"sqlite+aiosqlite:///{cloud.db_path}")
    start = datetime.fromtimestamp(day.start - 3600, UTC)
    end = datetime.fromtimestamp(day.start + 3 * 3600, UTC)
    try:
        async with engine.connect() as conn:
            rows = await ridership(conn, start, end)
            refused = await refusals(conn, start, end)
            seats = (await conn.execute(
                select(RESERVATIONS.c.person_id, RESERVATIONS.c.trip_id, RESERVATIONS.c.status,
                       RESERVATIONS.c.walk_on, RESERVATIONS.c.boarded_at)
                .order_by(RESERVATIONS.c.person_id)
            )).all()  # fmt: skip
            car = (await conn.execute(
                select(CAR_BOOKINGS.c.status, CAR_BOOKINGS.c.picked_up_at,
                       CAR_BOOKINGS.c.returned_at, CAR_BOOKINGS.c.distance_m)
            )).all()  # fmt: skip
            uses = (await conn.execute(
                select(TRANSPORT_CAR_USES.c.action, TRANSPORT_CAR_USES.c.reason,
                       TRANSPORT_CAR_USES.c.person_id, TRANSPORT_CAR_USES.c.ts,
                       TRANSPORT_CAR_USES.c.outcome)
                .order_by(TRANSPORT_CAR_USES.c.ts)
            )).all()  # fmt: skip
            outcomes = (await conn.execute(
                select(TRANSPORT_BOARDINGS.c.reason, TRANSPORT_BOARDINGS.c.outcome,
                       func.count()).group_by(TRANSPORT_BOARDINGS.c.reason,
                                              TRANSPORT_BOARDINGS.c.outcome)
            )).all()  # fmt: skip
    finally:
        await engine.dispose()
    return {
        "ridership": rows,
        "refusals": refused,
        "seats": [tuple(r) for r in seats],
        "car": [tuple(r) for r in car],
        "car_uses": [tuple(r) for r in uses],
        "outcomes": sorted((r[0], r[1] or "", r[2]) for r in outcomes),
    }


async def _ride_the_hour(tmp_path: Path, day: Day, *, outage: bool) -> dict[str, Any]:
    shuttle_taps, car_taps = scenario(day)
    counted = sum(1 for t in shuttle_taps) - 1  # the repeat tap sends nothing
    with devservers.mosquitto(persistence=True) as broker:
        async with running_cloud(tmp_path, broker.url) as cloud:
            await _seed(cloud.db_path, day)
            key = await cloud.client.get("/api/v1/snapshot-key")
            key.raise_for_status()
            (tmp_path / "snapshot.pub").write_bytes(key.content)
            parked = ParkedGps(STOPS, time_factor=20)
            async with (
                door_reader("RU-DR-S") as shuttle_reader,
                door_reader("RU-DR-C") as car_reader,
                parked.gps,
                _agents(tmp_path, broker.url, shuttle_reader.path, car_reader.path,
                        parked.path) as (shuttle, car),
            ):  # fmt: skip
                bus, pool = _vehicle(shuttle), _vehicle(car)

                async def snapshots_in() -> bool:
                    bus_snap, car_snap = bus.boarding.snapshot, pool.cars.snapshot
                    return (
                        bus_snap is not None and len(bus_snap.body.trips) == 2
                        and car_snap is not None
                        and len(car_snap.body.car_bookings) == 1
                        and all(d.state.online for v in (bus, pool) for d in v.drivers.values())
                    )  # fmt: skip

                await eventually(snapshots_in, timeout=60, what="both vehicles' snapshots")
                if outage:
                    broker.stop()
                await _play(bus, shuttle_taps, shuttle_reader, day.start, parked)
                await _play(pool, car_taps, car_reader, day.start, None)
                if outage:
                    # Decided alone: nothing could have reached the cloud yet.
                    assert _count(cloud.db_path, TRANSPORT_BOARDINGS) == 0
                    assert shuttle.uplink.queued >= counted and car.uplink.queued >= len(car_taps)
                    broker.start()

                async def settled() -> bool:
                    boardings = await asyncio.to_thread(_count, cloud.db_path, TRANSPORT_BOARDINGS)
                    uses = await asyncio.to_thread(_count, cloud.db_path, TRANSPORT_CAR_USES)
                    drained = all(
                        a.uplink.queued == 0 and a.uplink.outbox.awaiting_ack == 0
                        for a in (shuttle, car)
                    )
                    return boardings == counted and uses == len(car_taps) and drained

                await eventually(settled, timeout=120, interval=0.2, what="the hour in the cloud")
            return await _outcome(cloud, day)


async def test_ridership_and_trip_logs_after_an_hour_offline_equal_those_with_no_outage(
    tmp_path: Path,
) -> None:
    day = _plan(time.time())
    live = await _ride_the_hour(tmp_path / "live", day, outage=False)
    offline = await _ride_the_hour(tmp_path / "outage", day, outage=True)

    # What the hour was, in the run with no outage: every outcome the door can give.
    (trip1, _, _), (trip2, _, _) = day.trips
    per_trip: dict[str, int] = {}
    for r in live["ridership"]:
        per_trip[r.trip_id] = per_trip.get(r.trip_id, 0) + r.boardings
    assert per_trip == {trip1: 4, trip2: 3}
    assert [(r.reason, r.count) for r in live["refusals"]] == [
        ("full", 1),
        ("no_trip", 1),
        ("unknown_badge", 1),
    ]
    reserved = {(p, t, s) for p, t, s, walk_on, _ in live["seats"] if not walk_on}
    assert reserved == {("p-0", trip1, "boarded"), ("p-1", trip2, "boarded")}
    ((status, picked, returned, _),) = live["car"]
    assert status == "returned" and picked is not None and returned is not None
    assert [u[0] for u in live["car_uses"]] == ["refused", "pickup", "return"]

    # And the hour offline left exactly the same behind.
    assert offline == live
