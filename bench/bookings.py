"""Benchmark: booking writes and availability search through the real HTTP API.

Method: the cloud app runs under uvicorn on a free loopback port (PostgreSQL
from `launch.devservers.postgres()`, then a SQLite file); 32 concurrent HTTP
clients each send a fixed number of POST /api/v1/bookings, every request for
its own desk and hour so that nearly all succeed (the point is throughput of
the serialised, constraint-checked write path, not the conflict path, which
the tests cover). Reported: successful bookings/s over the whole burst and
p50/p99 request latency. Then availability on a generated 5,000-desk building
(20 floors x 10 zones x 25 desks, ~2,500 active bookings: the burst's and 1,200 more): p50/p99 of
GET /api/v1/availability for one floor and for the whole building.
Everything is loopback and bounded in count. Run: `python -m bench bookings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cloud.buildings.layout import (
    BuildingSpec,
    DeskSpec,
    FloorSpec,
    Layout,
    SiteSpec,
    ZoneSpec,
    apply_layout,
)
from cloud.db.engine import make_engine
from cloud.people.auth import mint_dev_token
from cloud.settings import CloudSettings
from launch import devservers
from launch.webapp import serve

CLIENTS = 32
PER_CLIENT = 40
SEARCHES = 60
FLOORS, ZONES, DESKS_PER_ZONE = 20, 10, 25


def _layout() -> Layout:
    floors = [
        FloorSpec(
            id=f"F{f:02d}",
            level=f,
            name=f"Lantai {f}",
            node=f"bench-node-{f:02d}",
            zones=[
                ZoneSpec(
                    id=f"F{f:02d}-Z{z}",
                    name=f"Zona {z}",
                    desks=[
                        DeskSpec(
                            id=f"F{f:02d}-Z{z}-D{d:02d}",
                            x=float(d),
                            y=float(z),
                            features=(["monitor"] if d % 2 else ["standing"]),
                        )
                        for d in range(DESKS_PER_ZONE)
                    ],
                )
                for z in range(ZONES)
            ],
        )
        for f in range(FLOORS)
    ]
    return Layout(
        site=SiteSpec(id="bench", name="Bench site", max_days_ahead=30),
        buildings=[BuildingSpec(id="B", name="Bench building", floors=floors)],
    )


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000.0


@contextlib.asynccontextmanager
async def _server(database_url: str, mqtt_url: str, tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_client_id=f"bench-bookings-{tmp.name}",
        http_port=devservers.free_port(),
        telemetry_sqlite_path=tmp / "telemetry.sqlite3",
    )
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=ready))
    try:
        async with asyncio.timeout(60):
            await ready.wait()
        limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)
        token = mint_dev_token(settings, "bench-admin", ["admin"])
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}",
            limits=limits,
            timeout=60,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _seed(client: httpx.AsyncClient, database_url: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        await apply_layout(engine, _layout())
    finally:
        await engine.dispose()
    people = [f"bench-{i:03d}" for i in range(CLIENTS + 1)]
    roster = "id,kind,name,role\n" + "".join(f"{p},asn,{p},asn\n" for p in people)
    r = await client.post(
        "/api/v1/people/import", content=roster, headers={"content-type": "text/csv"}
    )
    r.raise_for_status()
    return people


async def _one_db(database_url: str, mqtt_url: str, tmp: Path, tag: str) -> dict[str, float]:
    desks = [
        f"F{f:02d}-Z{z}-D{d:02d}"
        for f in range(FLOORS)
        for z in range(ZONES)
        for d in range(DESKS_PER_ZONE)
    ]
    base = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    async with _server(database_url, mqtt_url, tmp) as client:
        people = await _seed(client, database_url)
        latencies: list[float] = []
        ok = 0

        async def worker(c: int) -> None:
            nonlocal ok
            for k in range(PER_CLIENT):
                # Own desk per request, own hour per request of a client: no conflicts.
                start = base + timedelta(hours=k)
                body = {
                    "desk_id": desks[c * PER_CLIENT + k],
                    "person_id": people[c],
                    "starts_at": start.isoformat(),
                    "ends_at": (start + timedelta(hours=1)).isoformat(),
                }
                t0 = time.perf_counter()
                r = await client.post("/api/v1/bookings", json=body)
                latencies.append(time.perf_counter() - t0)
                ok += r.status_code == 201

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in range(CLIENTS)))
        elapsed = time.perf_counter() - t0

        # Seed more active bookings (one per desk, 1-minute windows after the
        # burst's hours, so no person rule trips) for NOT EXISTS to work through.
        slot = base + timedelta(hours=PER_CLIENT + 1)
        seeds = list(enumerate(desks[CLIENTS * PER_CLIENT : CLIENTS * PER_CLIENT + 1200]))

        async def seeder(part: list[tuple[int, str]]) -> None:
            for i, desk in part:
                start = slot + timedelta(minutes=i)
                await client.post(
                    "/api/v1/bookings",
                    json={
                        "desk_id": desk,
                        "person_id": people[i % CLIENTS],
                        "starts_at": start.isoformat(),
                        "ends_at": (start + timedelta(minutes=1)).isoformat(),
                    },
                )

        await asyncio.gather(*(seeder(seeds[i::8]) for i in range(8)))
        window: dict[str, Any] = {
            "start": (slot - timedelta(hours=1)).isoformat(),
            "end": (slot + timedelta(hours=21)).isoformat(),
        }
        search: dict[str, list[float]] = {"floor": [], "building": []}
        for i in range(SEARCHES):
            for name, extra in (("floor", {"floor": f"F{i % FLOORS:02d}"}), ("building", {})):
                t1 = time.perf_counter()
                r = await client.get("/api/v1/availability", params={**window, **extra})
                search[name].append(time.perf_counter() - t1)
                r.raise_for_status()
        free = len(r.json()["desks"])
    return {
        f"{tag}_bookings_per_s": ok / elapsed,
        f"{tag}_booking_success_ratio": ok / (CLIENTS * PER_CLIENT),
        f"{tag}_booking_p50_ms": _pct(latencies, 0.5),
        f"{tag}_booking_p99_ms": _pct(latencies, 0.99),
        f"{tag}_availability_floor_p50_ms": _pct(search["floor"], 0.5),
        f"{tag}_availability_floor_p99_ms": _pct(search["floor"], 0.99),
        f"{tag}_availability_5000_desks_p50_ms": _pct(search["building"], 0.5),
        f"{tag}_availability_5000_desks_p99_ms": _pct(search["building"], 0.99),
        f"{tag}_availability_free_desks": float(free),
    }


async def _main() -> dict[str, float]:
    results: dict[str, float] = {}
    with (
        devservers.mosquitto() as broker,
        devservers.postgres() as pg,
        tempfile.TemporaryDirectory(prefix="ruang-bench-bookings-") as tmp,
    ):
        pg_url = pg.create_database("bench_bookings")
        (Path(tmp) / "pg").mkdir()
        results |= await _one_db(pg_url, broker.url, Path(tmp) / "pg", "postgresql")
        (Path(tmp) / "sqlite").mkdir()
        sqlite_url = f"sqlite+aiosqlite:///{tmp}/sqlite/bench.sqlite3"
        results |= await _one_db(sqlite_url, broker.url, Path(tmp) / "sqlite", "sqlite")
    return results


def run() -> dict[str, float]:
    return asyncio.run(_main())


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
