"""Live transport over the real stack: positions published to Mosquitto reach the
tracker through ingestion (live and backlog), the dispatcher's SSE stream and live list
show the vehicle, GTFS-RT serves it, and the dispatcher's alerts/assignments/cancellations
go through the API into the feeds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiomqtt
import httpx
import pytest
from google.transit import gtfs_realtime_pb2 as rt

from cloud.db.engine import make_engine, migrate
from cloud.settings import CloudSettings
from cloud.transport.gtfs_export import sample_zip
from cloud.transport.gtfs_import import import_gtfs
from cloud.transport.live import LiveService
from ruang import contract
from tests.cloud.conftest import RunningCloud, eventually, publish, serving, unique
from tests.cloud.transport.live_helpers import add_vehicle
from tests.helpers import auth_headers


async def _event(lines: AsyncIterator[str]) -> tuple[str, str]:
    name, data = "message", ""
    async for line in lines:
        if line.startswith(":"):
            continue
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and data:
            return name, data
    raise AssertionError("stream ended")


def _position(node: str, vehicle: str, ts: float, lat: float, lon: float) -> contract.Position:
    return contract.Position(
        node=node, vehicle=vehicle, ts=ts, lat=lat, lon=lon, speed_kmh=25.0, fix_quality=1, hdop=0.8
    )


async def test_positions_through_mqtt_reach_the_stream_the_list_and_gtfs_rt(
    settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    await migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    node, vehicle = unique("veh-node"), unique("BUS")
    try:
        await import_gtfs(engine, sample_zip())
        await add_vehicle(engine, vehicle, node)
    finally:
        await engine.dispose()
    dispatcher = auth_headers(settings, subject="p-fm", roles=("facility_manager",), sites=("s",))
    async with (
        serving(settings) as (base, _task),
        httpx.AsyncClient(base_url=base, timeout=30, headers=dispatcher) as http,
    ):
        anonymous = httpx.AsyncClient(base_url=base, timeout=30)  # the feeds are public
        async with http.stream("GET", "/api/v1/transport/live/stream") as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert await anext(lines) == ": subscribed"
            now = time.time()
            await publish(publisher, _position(node, vehicle, now, -0.9600, 116.6970))
            async with asyncio.timeout(10):
                name, data = await _event(lines)
            assert name == "vehicles"
            row = json.loads(data)["vehicles"][0]
            assert row["vehicle"] == vehicle and row["lat"] == -0.96 and not row["stale"]
        listed = (await http.get("/api/v1/transport/live")).json()["vehicles"]
        assert [v["vehicle"] for v in listed] == [vehicle]

        feed = rt.FeedMessage()
        r = await anonymous.get("/api/v1/transport/gtfs-rt/vehicle-positions")
        assert r.headers["content-type"] == "application/x-protobuf"
        feed.ParseFromString(r.content)
        assert feed.header.incrementality == rt.FeedHeader.FULL_DATASET
        assert [e.id for e in feed.entity] == [f"vehicle:{vehicle}"]
        # GTFS-RT positions are 32-bit floats.
        assert feed.entity[0].vehicle.position.latitude == pytest.approx(-0.96, abs=1e-6)
        as_json = (
            await anonymous.get("/api/v1/transport/gtfs-rt/vehicle-positions?format=json")
        ).json()
        assert as_json["entity"][0]["id"] == f"vehicle:{vehicle}"
        await anonymous.aclose()


async def test_unknown_vehicles_and_backlog_are_counted_by_the_service(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    live: LiveService = cloud.app.state.transport_live
    node, vehicle = unique("veh-node"), unique("BUS")
    await add_vehicle(cloud.app.state.engine, vehicle, node)
    await live.refresh()
    now = time.time()
    await publish(publisher, _position(node, vehicle, now, -0.9600, 116.6970))
    await publish(publisher, _position(unique("n"), unique("GHOST"), now, -0.96, 116.69))
    old = _position(node, vehicle, now - 30, -0.9590, 116.6960)
    await publisher.publish(contract.backlog_topic(node, "position"), contract.encode(old), qos=1)

    async def all_seen() -> bool:
        return live.processed >= 3

    await eventually(all_seen)
    assert live.rejects["unknown_vehicle"] == 1
    body = (await cloud.http.get("/api/v1/transport/live")).json()
    assert body["rejected"] == {"unknown_vehicle": 1} and body["processed"] == 3
    tracker = live.trackers[vehicle]
    assert tracker.accepted == 2
    assert tracker.last is not None and tracker.last.lat == -0.96  # not moved back


async def test_dispatcher_alerts_assignments_and_cancellations(cloud: RunningCloud) -> None:
    http = cloud.http
    live: LiveService = cloud.app.state.transport_live
    await import_gtfs(cloud.app.state.engine, sample_zip())
    await add_vehicle(cloud.app.state.engine, "BUS-07", "veh-node-07")
    await live.refresh()
    r = await http.post(
        "/api/v1/transport/alerts",
        json={
            "header": "Halte KIPP-TERM ditutup",
            "description": "Gunakan halte KIPP-KEMENKO.",
            "cause": "CONSTRUCTION",
            "effect": "STOP_MOVED",
            "stop_id": "KIPP-TERM",
        },
    )
    assert r.status_code == 201, r.text
    alert = r.json()
    assert alert["active"] and alert["language"] == "id"
    bad = await http.post(
        "/api/v1/transport/alerts",
        json={
            "header": "x",
            "starts_at": "2026-12-07T10:00:00+08:00",
            "ends_at": "2026-12-07T09:00:00+08:00",
        },
    )
    assert bad.status_code == 422
    feed = (await http.get("/api/v1/transport/gtfs-rt/alerts?format=json")).json()
    entity = feed["entity"][0]
    assert entity["id"] == f"alert:{alert['id']}"
    assert entity["alert"]["informed_entity"] == [{"stop_id": "KIPP-TERM"}]
    assert entity["alert"]["header_text"]["translation"][0]["language"] == "id"
    assert (await http.delete(f"/api/v1/transport/alerts/{alert['id']}")).status_code == 204
    assert (await http.delete(f"/api/v1/transport/alerts/{alert['id']}")).status_code == 404
    assert "entity" not in (await http.get("/api/v1/transport/gtfs-rt/alerts?format=json")).json()

    body = {"vehicle": "BUS-07", "trip_id": "K1-0-0600", "service_date": "20261207"}
    assert (await http.post("/api/v1/transport/assignments", json=body)).status_code == 201
    assert live.assignments[("K1-0-0600", "20261207")] == "BUS-07"
    # The trip's seats are now the planned shuttle's (30, set by the seat service).
    seats = (await http.get("/api/v1/transport/trips/K1-0-0600/20261207/seats")).json()
    assert seats["capacity"] == 30
    listed = (await http.get("/api/v1/transport/assignments?service_date=20261207")).json()
    assert [a["trip_id"] for a in listed] == ["K1-0-0600"]
    unknown = {**body, "vehicle": "NO-SUCH"}
    assert (await http.post("/api/v1/transport/assignments", json=unknown)).status_code == 404
    no_trip = {**body, "trip_id": "NO-SUCH"}
    assert (await http.post("/api/v1/transport/assignments", json=no_trip)).status_code == 404
    assert (
        await http.delete("/api/v1/transport/assignments/K1-0-0600/20261207")
    ).status_code == 204
    assert ("K1-0-0600", "20261207") not in live.assignments

    cancel = {"trip_id": "K1-0-0615", "service_date": "20261207", "reason": "sopir sakit"}
    assert (await http.post("/api/v1/transport/cancellations", json=cancel)).status_code == 201
    assert ("K1-0-0615", "20261207") in live.cancelled
    board = await http.get("/api/v1/transport/departures", params={"stop": "NO-SUCH"})
    assert board.status_code == 404
