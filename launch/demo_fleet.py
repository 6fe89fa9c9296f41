"""The demo's moving fleet: shuttles driving their routes and a pool car out on an errand,
each through its own vehicle edge agent, so the kiosk and the dispatcher map move alone.

Every shuttle is the shuttle simulator (simulators/shuttle.py) writing NMEA on a pty,
read by the GPS driver of an edge agent whose node rides in that vehicle; the agent
publishes `position` telemetry like a real vehicle node, and the cloud's live
service tracks it. The dispatcher's assignment (`POST /api/v1/transport/assignments`)
puts each shuttle on the trip it drives; when a trip ends, the shuttle takes the next
trip of its route. The pool car loops through the government core on the plain GPS
simulator.

The sample schedule runs on weekdays 06:00-19:00 WITA. So that a demo started at night
or on a Sunday still shows shuttles, `demo_feed` uploads the same network with a
timetable that runs every day, shifted by whole hours when now is outside the
service hours (the demo prints the shift); in service hours it is the sample as is,
running daily.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import httpx

    from cloud.transport.plan import TripPlan
    from edge.agent import EdgeAgent
    from ruang import contract
    from simulators.shuttle import ShuttleSimulator

log = logging.getLogger(__name__)

# The timetable runs this far back, so the past weeks' boardings find their trips.
HISTORY_DAYS = 28
READER = "door-1"  # the door reader of each demo shuttle (launch/demo_riders.py taps there)

WITA = ZoneInfo("Asia/Makassar")
SERVICE_FROM = time(6, 30)  # the sample's first trips leave at 06:00; keep a margin
SERVICE_TO = time(18, 0)  # its last ones at 19:00
# Which route each demo shuttle drives (launch/demo_transport.py's vehicles).
ROUTE_OF = {"ikn-bus-1": "K1", "ikn-bus-2": "K2", "ikn-bus-3": "K3"}
POOL_CAR = "ikn-car-1"
# The pool car's errand: around the government core and back.
CAR_LOOP = (
    (-0.96950, 116.70200),
    (-0.97220, 116.70610),
    (-0.97860, 116.70730),
    (-0.96680, 116.70680),
)


def node_of(vehicle: str) -> str:
    from launch.demo_transport import node_of as demo_node

    return demo_node(vehicle)


def shift_hours(now: datetime) -> int:
    """Whole hours to move the timetable so that `now` falls inside its service hours."""
    local = now.astimezone(WITA)
    if SERVICE_FROM <= local.time() <= SERVICE_TO:
        return 0
    # Put now at about 08:00 of the timetable (a morning rush with every route running).
    hour = local.hour if local.hour >= 6 else local.hour + 24  # before 06:00: yesterday's 24+h
    return hour - 8


def demo_feed(sample: bytes, now: datetime) -> tuple[bytes, int]:
    """The sample feed, running every day around `now`, and the hours it was shifted."""
    shift = shift_hours(now)
    files: dict[str, str] = {}
    with zipfile.ZipFile(io.BytesIO(sample)) as archive:
        for name in archive.namelist():
            files[name] = archive.read(name).decode("utf-8")
    header, *rows = files["stop_times.txt"].splitlines()
    columns = header.split(",")
    timed = [columns.index("arrival_time"), columns.index("departure_time")]
    out = [header]
    for row in rows:
        cells = row.split(",")
        for i in timed:
            if cells[i]:
                h, m, s = cells[i].split(":")
                cells[i] = f"{int(h) + shift:02d}:{m}:{s}"
        out.append(",".join(cells))
    files["stop_times.txt"] = "\n".join(out) + "\n"
    local = now.astimezone(WITA).date()
    files["calendar.txt"] = (
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
        f"WEEKDAY,1,1,1,1,1,1,1,{(local - timedelta(days=HISTORY_DAYS)):%Y%m%d},"
        f"{(local + timedelta(days=30)):%Y%m%d}\n"
    )
    files.pop("calendar_dates.txt", None)  # holidays off: the demo runs every day
    files.pop("feed_info.txt", None)  # its validity dates no longer describe this feed
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in sorted(files.items()):
            archive.writestr(name, body)
    return buffer.getvalue(), shift


@dataclass
class Shuttle:
    vehicle: str
    route: str
    sim: ShuttleSimulator
    agent: EdgeAgent
    plan: TripPlan


async def next_plan(
    database_url: str, route: str, after: float, taken: set[tuple[str, str]]
) -> TripPlan | None:
    """The trip of `route` running at `after` or leaving soonest after it (not `taken`)."""
    from cloud.db.engine import make_engine
    from cloud.transport import schedule

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            tz = await schedule.timezone(conn)
            today = datetime.fromtimestamp(after, tz).date()
            best: TripPlan | None = None
            for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
                for plan in await schedule.plans_for_day(conn, day):
                    key = (plan.trip_id, plan.service_date)
                    if plan.route_id != route or key in taken or plan.end < after:
                        continue
                    if best is None or plan.start < best.start:
                        best = plan
            return best
    finally:
        await engine.dispose()


async def assign(http: httpx.AsyncClient, vehicle: str, plan: TripPlan) -> None:
    r = await http.post(
        "/api/v1/transport/assignments",
        json={"vehicle": vehicle, "trip_id": plan.trip_id, "service_date": plan.service_date},
    )
    if r.status_code >= 400:
        log.warning("demo: assigning %s to %s refused: %s", vehicle, plan.trip_id, r.text)


def _agent(
    vehicle: str, port: str, mqtt_url: str, data_dir: Path, key: Path, door: str | None = None
) -> EdgeAgent:
    from edge.agent import EdgeAgent
    from edge.devices.gps import GpsConfig
    from edge.settings import EdgeSettings
    from edge.vehicle_config import DoorReaderConfig, VehicleConfig

    kind: Literal["shuttle", "poolcar"] = "poolcar" if vehicle.startswith("ikn-car") else "shuttle"
    return EdgeAgent(
        EdgeSettings(
            node_id=node_of(vehicle),
            mqtt_url=mqtt_url,
            state_dir=data_dir / "vehicles" / vehicle,
            health_interval_s=30,
            gps=[
                GpsConfig(
                    device=f"{vehicle}-gps", vehicle=vehicle, port=port, publish_interval_s=2.0
                )
            ],
            vehicle=VehicleConfig(
                vehicle=vehicle,
                kind=kind,
                readers=[] if door is None else [DoorReaderConfig(id=READER, port=door)],
            ),
            snapshot_public_key=key,
        )
    )


async def run_fleet(
    http: httpx.AsyncClient,
    *,
    database_url: str,
    mqtt_url: str,
    data_dir: Path,
    public_key: Path,
    seed: int = 7,
    riders: dict[str, str] | None = None,
    after: Awaitable[object] | None = None,
) -> None:
    """Uploads the demo timetable, then drives the shuttles and the pool car until cancelled.

    With `riders` ({person id: badge UID} of the demo roster), each shuttle's node has a
    door reader at which some of them tap while the shuttle dwells (launch/demo_riders.py),
    and their past weeks on the shuttles are backfilled once `after` (the desks' backfill)
    is done: one backfill at a time keeps the embedded broker within its pace.
    """
    from cloud.transport.gtfs_export import sample_zip
    from launch.demo_riders import ride_trips
    from simulators.gps import GpsSimulator
    from simulators.riders import door_reader
    from simulators.shuttle import ShuttleRun, ShuttleSimulator, seeded_traffic

    now = datetime.now(UTC)
    feed, shift = demo_feed(sample_zip(), now)
    r = await http.post(
        "/api/v1/transport/gtfs", content=feed, headers={"content-type": "application/zip"}
    )
    r.raise_for_status()
    if shift:
        print(
            f"  shuttles   outside service hours: the sample timetable runs {shift:+d} h "
            "shifted, every day",
            flush=True,
        )
    # The pool car is out on an errand: in service, and moving.
    await http.patch(f"/api/v1/transport/vehicles/{POOL_CAR}", json={"state": "in_service"})

    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tg:
        if riders:
            tg.create_task(_history(mqtt_url, database_url, riders, shift, after), name="history")
        shuttles: list[Shuttle] = []
        taken: set[tuple[str, str]] = set()
        for n, (vehicle, route) in enumerate(sorted(ROUTE_OF.items())):
            plan = await next_plan(database_url, route, now.timestamp(), taken)
            if plan is None:
                log.warning("demo: no trip of %s to drive", route)
                continue
            taken.add((plan.trip_id, plan.service_date))
            run = ShuttleRun(plan, traffic=seeded_traffic(seed + n, len(plan.stops) - 1))
            sim = ShuttleSimulator(run, start=max(now.timestamp(), run.t0))
            await stack.enter_async_context(sim)
            reader = None
            if riders:
                reader = await stack.enter_async_context(door_reader(f"RU-DR-{n + 1:06d}"))
            door = None if reader is None else reader.path
            agent = _agent(vehicle, sim.path, mqtt_url, data_dir, public_key, door)
            tg.create_task(agent.run(), name=f"edge-{vehicle}")
            await assign(http, vehicle, plan)
            shuttle = Shuttle(vehicle, route, sim, agent, plan)
            shuttles.append(shuttle)
            if reader is not None and riders:
                tg.create_task(
                    ride_trips(
                        http,
                        sim,
                        reader,
                        riders,
                        _plan_of(shuttle),
                        _snapshot_of(agent),
                        seed=seed + n,
                    ),
                    name=f"riders-{vehicle}",
                )
        car = await stack.enter_async_context(
            GpsSimulator(list(CAR_LOOP), speed_kmh=35.0, start=now.replace(microsecond=0))
        )
        tg.create_task(
            _agent(POOL_CAR, car.path, mqtt_url, data_dir, public_key).run(), name="edge-car"
        )
        print(
            f"  shuttles   {len(shuttles)} driving "
            + ", ".join(f"{s.vehicle} on {s.plan.trip_id}" for s in shuttles)
            + f"; pool car {POOL_CAR} on an errand",
            flush=True,
        )
        for s in shuttles:
            tg.create_task(
                _next_trips(http, database_url, s, taken, seed), name=f"trips-{s.vehicle}"
            )


async def _history(
    mqtt_url: str,
    database_url: str,
    riders: dict[str, str],
    shift: int,
    after: Awaitable[object] | None,
) -> None:
    """The shuttles' past weeks; a failure is logged, the live fleet goes on."""
    from launch.demo_history import run_transport_history

    try:
        if after is not None:
            await after
        await run_transport_history(
            mqtt_url,
            database_url,
            sorted(riders.values()),
            route_of=ROUTE_OF,
            shift_h=shift,
            tz=str(WITA),
        )
    except Exception:
        log.exception("demo: transport history not loaded")


def _snapshot_of(agent: EdgeAgent) -> Callable[[], contract.SnapshotBody | None]:
    def body() -> contract.SnapshotBody | None:
        view = agent.snapshots.current
        return None if view is None else view.body

    return body


def _plan_of(shuttle: Shuttle) -> Callable[[], TripPlan]:
    return lambda: shuttle.plan


async def _next_trips(
    http: httpx.AsyncClient,
    database_url: str,
    shuttle: Shuttle,
    taken: set[tuple[str, str]],
    seed: int,
) -> None:
    """When a shuttle's trip ends, it takes the next trip of its route."""
    from simulators.shuttle import ShuttleRun, seeded_traffic

    n = 0
    while True:
        run = shuttle.sim.run
        await asyncio.sleep(max(5.0, run.end + 30 - datetime.now(UTC).timestamp()))
        plan = await next_plan(database_url, shuttle.route, datetime.now(UTC).timestamp(), taken)
        if plan is None:
            await asyncio.sleep(300)
            continue
        n += 1
        taken.add((plan.trip_id, plan.service_date))
        shuttle.plan = plan
        # The simulator reads its run each second: the next trip starts from its first stop.
        shuttle.sim.run = ShuttleRun(plan, traffic=seeded_traffic(seed + n, len(plan.stops) - 1))
        await assign(http, shuttle.vehicle, plan)
