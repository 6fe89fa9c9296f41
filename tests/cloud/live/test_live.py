"""Live desk changes: the hub's queues, ingestion announcing commits, and the SSE floor stream.

The stream runs against a real uvicorn server (httpx's ASGI transport buffers
whole responses), and must end when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiomqtt
import httpx

from cloud.db.engine import make_engine
from cloud.live.hub import LiveHub
from cloud.settings import CloudSettings
from ruang import contract
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud, publish, serving
from tests.cloud.map_helpers import now_slot
from tests.helpers import auth_headers


async def test_hub_coalesces_filters_and_closes() -> None:
    hub = LiveHub()
    with hub.subscribe({"A", "B"}) as sub:
        hub.announce(["A"])
        hub.announce(["B", "Z"])
        hub.announce(["Z"])  # not this subscriber's desk: never queued
        batch = await sub.next(coalesce_s=0.05, idle_s=1)
        assert batch is not None and batch.desks == {"A", "B"} and not batch.resync
        idle = await sub.next(coalesce_s=0.01, idle_s=0.05)
        assert idle is not None and idle.idle
        hub.close()
        assert await sub.next(coalesce_s=0.01, idle_s=1) is None
    with hub.subscribe() as late:  # after close: ends at once
        assert await late.next(coalesce_s=0.01, idle_s=1) is None
    assert hub.subscribers == 0


async def test_a_slow_subscriber_overflows_into_resync() -> None:
    hub = LiveHub(queue_size=4)
    with hub.subscribe() as slow:
        for i in range(10):
            hub.announce([f"D{i}"])
        batch = await slow.next(coalesce_s=0.01, idle_s=1)
        assert batch is not None and batch.resync and not batch.desks
        hub.announce(["D1"])
        batch = await slow.next(coalesce_s=0.01, idle_s=1)
        assert batch is not None and batch.desks == {"D1"} and not batch.resync


async def test_ingestion_announces_committed_desk_changes(
    cloud: RunningCloud, settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    await seed(cloud, settings)
    hub: LiveHub = cloud.app.state.live
    with hub.subscribe({"L1-D09"}) as sub:
        await publish(publisher, contract.Presence(node="ikn-demo-l1", desk="L1-D09", present=True))
        batch = await sub.next(coalesce_s=0.01, idle_s=15)
        assert batch is not None and batch.desks == {"L1-D09"}
    # Announced after the commit: the map already shows it.
    desks = {d["id"]: d for d in (await cloud.http.get("/api/v1/floors/A1-L1/map")).json()["desks"]}
    assert desks["L1-D09"]["state"] == "occupied"


async def _event(lines: AsyncIterator[str]) -> tuple[str, str]:
    """The next SSE event (name, data), skipping comments."""
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


async def test_stream_sends_booking_changes_and_ends_with_the_server(
    settings: CloudSettings,
) -> None:
    async with serving(settings) as (base, task):
        engine = make_engine(settings.database_url)
        manager = auth_headers(
            settings, subject="p-citra", roles=("facility_manager",), sites=("ikn-kipp",)
        )
        async with httpx.AsyncClient(
            base_url=base, timeout=30, headers=auth_headers(settings)
        ) as admin:
            try:
                await seed(admin, settings, engine)
            finally:
                await engine.dispose()
            async with httpx.AsyncClient(base_url=base, timeout=30, headers=manager) as client:
                assert (await client.get("/api/v1/floors/nope/stream")).status_code == 404
                async with client.stream("GET", "/api/v1/floors/A1-L1/stream") as stream:
                    assert stream.status_code == 200
                    assert stream.headers["content-type"].startswith("text/event-stream")
                    lines = stream.aiter_lines()
                    assert await anext(lines) == ": subscribed"
                    start, end = now_slot()
                    r = await admin.post(
                        "/api/v1/bookings",
                        json={
                            "desk_id": "L1-D03",
                            "person_id": "p-ayu",
                            "starts_at": start,
                            "ends_at": end,
                        },
                    )
                    assert r.status_code == 201, r.text
                    async with asyncio.timeout(10):
                        name, data = await _event(lines)
                    assert name == "desks"
                    update = json.loads(data)
                    assert [d["id"] for d in update["desks"]] == ["L1-D03"]
                    assert update["desks"][0]["state"] == "booked"
                    assert update["desks"][0]["occupant"] == "Ayu Lestari"
                    assert update["counts"]["floor"]["booked"] == 1
                    assert update["counts"]["zones"]["A1-L1-Z1"]["booked"] == 1

                    # Stopping the server ends the open stream instead of hanging on it.
                    task.cancel()
                    async with asyncio.timeout(15):
                        rest = [line async for line in lines]
                    assert all(line.startswith(":") or line == "" for line in rest), rest
        # ... and the server finishes its shutdown (nothing waits on the stream).
        async with asyncio.timeout(30):
            with contextlib.suppress(asyncio.CancelledError):
                await task
