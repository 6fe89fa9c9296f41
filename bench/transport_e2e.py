"""A shuttle end to end: simulator on a pty -> edge GPS driver -> edge uplink -> Mosquitto
-> cloud ingestion -> tracker -> GTFS-Realtime, and how long a fix takes to show.

`drive_shuttle` is the harness (the end-to-end test runs it too, without timing
asserts): it imports a short trip as the cloud's schedule, registers the vehicle and
assigns it, then runs `ShuttleSimulator` at `time_factor`, the real `GpsDriver` on the
pty publishing through a real `Uplink`, and polls the public VehiclePositions feed. Every
new moving position in the feed is matched to the NMEA burst that carried it (nearest
position among the recent bursts); its latency is feed time minus the burst's write
time on the serial line. The edge publishes the latest fix every `publish_interval_s`,
so that interval bounds part of the figure.

The GPS driver stamps positions with the edge clock, so the simulated shuttle must not
drive faster in real time than the tracker believes a road vehicle can:
`time_factor` x speed stays under 130 km/h.

`run()` returns `fix_to_gtfsrt_ms_p50/_p99` and `fix_to_dispatch_stream_ms_p50/_p99` (the
dispatcher map's SSE stream), target p99 < 1 s each, with their verdicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from google.transit import gtfs_realtime_pb2 as rt
from sqlalchemy import select

from cloud.db.engine import make_engine, migrate
from cloud.db.tables import TRANSPORT_STOP_EVENTS, TRANSPORT_VEHICLES
from cloud.people.auth import mint_dev_token
from cloud.settings import CloudSettings
from cloud.transport.geo import haversine_m
from cloud.transport.gtfs_import import import_gtfs
from cloud.transport.plan import TripPlan
from edge.devices.gps import GpsConfig, GpsDriver
from edge.settings import EdgeSettings
from edge.uplink import Uplink
from launch import devservers
from launch.webapp import serve
from ruang import contract
from simulators.shuttle import SAMPLE_WAYPOINTS, ShuttleRun, ShuttleSimulator, sample_plan
from simulators.shuttle_gtfs import gtfs_zip_bytes

TARGET_P99_MS = 1000.0
WITA = dt.timezone(dt.timedelta(hours=8))


@dataclass
class E2EResult:
    plan: TripPlan
    run: ShuttleRun
    latencies_ms: list[float] = field(default_factory=list)
    stream_latencies_ms: list[float] = field(default_factory=list)  # the dispatcher's SSE
    trip_seen_in_feed: bool = False
    trip_update_seen: bool = False
    stops_seen: set[int] = field(default_factory=set)  # current_stop_sequence values
    stop_events: list[Any] = field(default_factory=list)  # rows of transport_stop_events


def e2e_plan(start: float) -> TripPlan:
    """Three stops over 2 km of the sample road, today's service day (WITA)."""
    day = dt.datetime.fromtimestamp(start, WITA).strftime("%Y%m%d")
    return sample_plan(
        start,
        trip_id="E2E-1",
        route_id="E2E",
        service_date=day,
        stop_every=2,
        speed_kmh=30,
        dwell_s=10,
        waypoints=SAMPLE_WAYPOINTS[:5],
    )


async def _prepare(database_url: str, plan: TripPlan, vehicle: str, node: str) -> None:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        await import_gtfs(engine, gtfs_zip_bytes([plan]))
        async with engine.begin() as conn:
            now = dt.datetime.now(dt.UTC)
            await conn.execute(
                TRANSPORT_VEHICLES.insert().values(
                    id=vehicle, kind="shuttle", label="Shuttle E2E", capacity=30, seats=20,
                    wheelchair_accessible=True, node_id=node, state="in_service",
                    state_changed_at=now, created_at=now,
                )
            )  # fmt: skip
    finally:
        await engine.dispose()


async def _stop_events(database_url: str, trip: str) -> list[Any]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(TRANSPORT_STOP_EVENTS)
                .where(TRANSPORT_STOP_EVENTS.c.trip_id == trip)
                .order_by(TRANSPORT_STOP_EVENTS.c.stop_sequence)
            )
            return list(rows)
    finally:
        await engine.dispose()


async def drive_shuttle(
    base_url: str,
    settings: CloudSettings,
    workdir: Path,
    *,
    time_factor: float = 4.0,
    publish_interval_s: float = 0.25,
    poll_s: float = 0.02,
) -> E2EResult:
    """Runs the whole trip; the cloud at `base_url` must be serving `settings`' database
    and broker (its schedule is replaced by the trip)."""
    node, vehicle = "veh-e2e", "BUS-E2E"
    plan = e2e_plan(time.time() + 15 / time_factor)
    await _prepare(settings.database_url, plan, vehicle, node)
    token = mint_dev_token(settings, "bench-dispatcher", ["admin"])
    result = E2EResult(plan, ShuttleRun(plan, dwell_s=10, lead_s=15))
    async with httpx.AsyncClient(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        r = await http.post(
            "/api/v1/transport/assignments",
            json={"vehicle": vehicle, "trip_id": plan.trip_id, "service_date": plan.service_date},
        )
        r.raise_for_status()
        edge = EdgeSettings(node_id=node, mqtt_url=settings.mqtt_url, state_dir=workdir / "edge")

        async def ignore(_: contract.Message) -> None:
            return None

        uplink = Uplink(
            edge, birth=lambda b: contract.NodeState(node=node, online=True, bdseq=b),
            on_command=ignore,
        )  # fmt: skip
        tasks: list[asyncio.Task[None]] = []
        async with ShuttleSimulator(result.run, time_factor=time_factor) as sim:
            bursts: list[tuple[float, float, float]] = []  # loop time, lat, lon (moving)
            driver = GpsDriver(
                GpsConfig(
                    device="gps-e2e", vehicle=vehicle, port=sim.path,
                    publish_interval_s=publish_interval_s,
                ),
                node, uplink.publish,
            )  # fmt: skip
            loop = asyncio.get_running_loop()
            tasks = [
                asyncio.create_task(uplink.run()),
                asyncio.create_task(driver.run()),
                asyncio.create_task(_watch_stream(http, result, bursts, loop.time)),
            ]
            last: list[tuple[float, float] | None] = [None]  # the feed's previous position
            real_end = loop.time() + (result.run.end - result.run.t0 + 20) / time_factor + 5
            try:
                while loop.time() < real_end:
                    sample = sim.last_sample
                    if sample is not None and sample.fix and sample.speed_kmh > 0:
                        if not bursts or bursts[-1][1:] != (sample.lat, sample.lon):
                            written = sim.emitted.get(int(sample.when.timestamp()))
                            if written is not None:
                                bursts.append((written, sample.lat, sample.lon))
                    await _poll(http, result, bursts, last, loop.time)
                    await asyncio.sleep(poll_s)
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    result.stop_events = await _stop_events(settings.database_url, plan.trip_id)
    return result


async def _poll(
    http: httpx.AsyncClient,
    result: E2EResult,
    bursts: list[tuple[float, float, float]],
    last: list[tuple[float, float] | None],
    clock: Any,
) -> None:
    vp = rt.FeedMessage()
    vp.ParseFromString((await http.get("/api/v1/transport/gtfs-rt/vehicle-positions")).content)
    seen_at = clock()
    for entity in vp.entity:
        v = entity.vehicle
        if v.trip.trip_id == result.plan.trip_id:
            result.trip_seen_in_feed = True
            if v.HasField("current_stop_sequence"):
                result.stops_seen.add(v.current_stop_sequence)
        pos = (v.position.latitude, v.position.longitude)
        if pos == last[0] or v.position.speed <= 0:
            last[0] = pos
            continue
        last[0] = pos
        ms = _latency(bursts, pos[0], pos[1], seen_at)
        if ms is not None:
            result.latencies_ms.append(ms)
    if not result.trip_update_seen:
        tu = rt.FeedMessage()
        tu.ParseFromString((await http.get("/api/v1/transport/gtfs-rt/trip-updates")).content)
        result.trip_update_seen = any(
            e.trip_update.trip.trip_id == result.plan.trip_id for e in tu.entity
        )


def _latency(
    bursts: list[tuple[float, float, float]], lat: float, lon: float, seen_at: float
) -> float | None:
    """ms from the serial write of the burst that carried (lat, lon) until `seen_at`."""
    recent = [b for b in bursts if seen_at - b[0] < 10]
    if not recent:
        return None
    best = min(recent, key=lambda b: haversine_m(b[1], b[2], lat, lon))
    if haversine_m(best[1], best[2], lat, lon) >= 3.0:
        return None
    return (seen_at - best[0]) * 1000


async def _watch_stream(
    http: httpx.AsyncClient,
    result: E2EResult,
    bursts: list[tuple[float, float, float]],
    clock: Any,
) -> None:
    """The dispatcher map's view: its SSE stream of moved vehicles."""
    async with http.stream("GET", "/api/v1/transport/live/stream") as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data: "):
                continue
            seen_at = clock()
            for v in json.loads(line[len("data: ") :])["vehicles"]:
                if v["lat"] is None or not v["speed_kmh"]:
                    continue
                ms = _latency(bursts, v["lat"], v["lon"], seen_at)
                if ms is not None:
                    result.stream_latencies_ms.append(ms)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _bench() -> E2EResult:
    with (
        devservers.mosquitto() as broker,
        tempfile.TemporaryDirectory(prefix="ruang-bench-transport-") as tmp,
    ):
        workdir = Path(tmp)
        settings = CloudSettings(
            database_url=f"sqlite+aiosqlite:///{workdir}/cloud.sqlite3",
            mqtt_url=broker.url,
            mqtt_client_id="ruang-cloud-bench-transport",
            http_port=devservers.free_port(),
            telemetry_sqlite_path=workdir / "telemetry.sqlite3",
            flush_interval_s=0.05,
        )
        ready = asyncio.Event()
        cloud = asyncio.create_task(serve(settings, ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            return await drive_shuttle(f"http://127.0.0.1:{settings.http_port}", settings, workdir)
        finally:
            cloud.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cloud


def run() -> dict[str, Any]:
    result = asyncio.run(_bench())
    lat = result.latencies_ms
    if not lat:
        raise RuntimeError("no position reached the GTFS-RT feed")
    p50, p99 = statistics.median(lat), _pct(lat, 0.99)
    arrivals = sum(1 for r in result.stop_events if r.arrival_at is not None)
    sse = result.stream_latencies_ms
    if not sse:
        raise RuntimeError("no position reached the dispatcher's stream")
    s50, s99 = statistics.median(sse), _pct(sse, 0.99)
    return {
        "e2e_positions_matched": len(lat),
        "e2e_stops_with_arrival": f"{arrivals}/{len(result.plan.stops)}",
        "fix_to_gtfsrt_ms_p50": round(p50, 1),
        "fix_to_gtfsrt_ms_p99": round(p99, 1),
        "fix_to_gtfsrt_target": f"p99 < {TARGET_P99_MS:.0f} ms (edge publishes every 250 ms)",
        "fix_to_gtfsrt_verdict": "PASS" if p99 < TARGET_P99_MS else "FAIL",
        "fix_to_dispatch_stream_ms_p50": round(s50, 1),
        "fix_to_dispatch_stream_ms_p99": round(s99, 1),
        "fix_to_dispatch_stream_target": f"p99 < {TARGET_P99_MS:.0f} ms",
        "fix_to_dispatch_stream_verdict": "PASS" if s99 < TARGET_P99_MS else "FAIL",
    }
