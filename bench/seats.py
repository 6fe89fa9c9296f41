"""Seat reservations under contention: decisions per second and the overbooking count (must be 0).

Topology as deployed: Mosquitto, `ruang cloud serve` in its own process, and the
load generator `wrk` (Debian's, with a Lua script) in another, on SQLite and on
PostgreSQL. Every wrk connection posts reservations for its own stream of people
onto the same few trips (capacity `CAPACITY` each), so the requests race for
the same counter rows the whole time; most trips fill within the first second
and the rest of the run is refusals racing confirmations of the trips still open.

Figures per database: requests answered per second (201 confirmed + 409 full or
already reserved), the confirmations, and the overbooking count, read from the
database afterwards: for every trip, confirmed reservations beyond its capacity
plus any mismatch between the counter row and the reservation rows, plus any
201 the database does not hold. Target: 0 overbooking and no 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from launch import devservers

CAPACITY = 40
TRIPS = 5
THREADS = 2
CONNECTIONS = 64
PEOPLE_PER_THREAD = 1500
DURATION_S = 10

_LUA = """
-- Each thread posts reservations for its own people onto TRIPS trips, round robin.
local trips = {%(trips)s}
local counter = 0
tid = 0
n201, n409, n5xx, nother = 0, 0, 0, 0

function setup(thread)
  thread:set("tid", tid)
  tid = tid + 1
  table.insert(threads_list, thread)
end
threads_list = {}

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer %(token)s"
end

function request()
  counter = counter + 1
  local trip = trips[(counter %% #trips) + 1]
  local person = string.format("b%%d-%%d", tid, math.floor(counter / #trips) %% %(people)d)
  local body = string.format(
    '{"trip_id":"%%s","service_date":"%(day)s","from_stop":"%%s","person_id":"%%s"}',
    trip[1], trip[2], person)
  return wrk.format(nil, "/api/v1/transport/reservations", nil, body)
end

function response(status, headers, body)
  if status == 201 then n201 = n201 + 1
  elseif status == 409 then n409 = n409 + 1
  elseif status >= 500 then n5xx = n5xx + 1
  else nother = nother + 1 end
end

function done(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads_list) do
    a = a + t:get("n201"); b = b + t:get("n409"); c = c + t:get("n5xx"); d = d + t:get("nother")
  end
  io.write(string.format("STATUS 201=%%d 409=%%d 5xx=%%d other=%%d\\n", a, b, c, d))
end
"""


async def _wait_ready(client: httpx.AsyncClient) -> None:
    async with asyncio.timeout(90):
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)


async def _seed(client: httpx.AsyncClient, database_url: str) -> tuple[str, list[tuple[str, str]]]:
    from cloud.db.engine import make_engine
    from cloud.transport import schedule
    from cloud.transport.gtfs_export import sample_zip
    from cloud.transport.gtfs_import import import_gtfs

    engine = make_engine(database_url)
    try:
        await import_gtfs(engine, sample_zip())
        async with engine.connect() as conn:
            # The first service day from tomorrow on (WITA): its last trips are all ahead.
            tz = await schedule.timezone(conn)
            day = datetime.now(UTC).astimezone(tz).date() + timedelta(days=1)
            while not await schedule.trips_on(conn, day):
                day += timedelta(days=1)
            trips = (await schedule.trips_on(conn, day))[-TRIPS:]
            picks = []
            for trip in trips:
                plan = await schedule.trip_plan(conn, trip.trip_id, day)
                assert plan is not None
                picks.append((trip.trip_id, plan.stops[0].stop_id))
    finally:
        await engine.dispose()
    people = [f"b{t}-{k}" for t in range(THREADS) for k in range(PEOPLE_PER_THREAD)]
    for i in range(0, len(people), 1000):
        rows = "".join(f"{p},asn,{p},asn\n" for p in people[i : i + 1000])
        r = await client.post(
            "/api/v1/people/import",
            content="id,kind,name,role\n" + rows,
            headers={"content-type": "text/csv"},
            timeout=120,
        )
        r.raise_for_status()
    return schedule.gtfs_date(day), picks


async def _overbooking(database_url: str) -> tuple[int, int]:
    """(overbooked seats, confirmed rows) as the database holds them after the run."""
    from cloud.db.engine import make_engine
    from cloud.db.tables import RESERVATIONS, TRIP_SEATS

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = dict(
                (
                    await conn.execute(
                        select(RESERVATIONS.c.trip_id, func.count())
                        .where(RESERVATIONS.c.status == "confirmed")
                        .group_by(RESERVATIONS.c.trip_id)
                    )
                ).all()
            )
            over = 0
            for counter in (await conn.execute(select(TRIP_SEATS))).all():
                held = int(rows.get(counter.trip_id, 0))
                over += max(0, held - counter.capacity) + abs(held - counter.confirmed)
            return over, sum(int(v) for v in rows.values())
    finally:
        await engine.dispose()


async def _one_db(database_url: str, mqtt_url: str, tmp: Path, tag: str) -> dict[str, Any]:
    from cloud.people.auth import mint_dev_token
    from cloud.settings import CloudSettings

    port = devservers.free_port()
    env = {
        **os.environ,
        "RUANG_DATABASE_URL": database_url,
        "RUANG_MQTT_URL": mqtt_url,
        "RUANG_MQTT_CLIENT_ID": f"bench-seats-{tag}",
        "RUANG_HTTP_PORT": str(port),
        "RUANG_TELEMETRY_SQLITE_PATH": f"{tmp}/telemetry.sqlite3",
        "RUANG_LOG_LEVEL": "WARNING",
        "RUANG_AUTH_DEV_KEY_PATH": f"{tmp}/dev-key.pem",
        "RUANG_SNAPSHOT_KEY_PATH": f"{tmp}/snapshot-key.pem",
        "RUANG_SHUTTLE_DEFAULT_CAPACITY": str(CAPACITY),
    }
    env.pop("RUANG_INFLUX_URL", None)
    token = mint_dev_token(
        CloudSettings(auth_dev_key_path=tmp / "dev-key.pem"), "bench", ["admin"], ttl_s=3600
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "launch.cli", "cloud", "serve", env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            await _wait_ready(client)
            day, trips = await _seed(client, database_url)
        script = tmp / "reserve.lua"
        script.write_text(
            _LUA
            % {
                "trips": ", ".join(f'{{"{t}", "{s}"}}' for t, s in trips),
                "token": token,
                "people": PEOPLE_PER_THREAD,
                "day": day,
            }
        )
        wrk = await asyncio.create_subprocess_exec(
            "wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--timeout", "30s",
            "-s", str(script), base,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out = (await wrk.communicate())[0].decode()
    finally:
        proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 15)
        if proc.returncode is None:
            proc.kill()
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    counts = re.search(r"STATUS 201=(\d+) 409=(\d+) 5xx=(\d+) other=(\d+)", out)
    if rate is None or counts is None:
        raise RuntimeError(f"wrk printed no figures:\n{out}")
    confirmed_http, refused, errors, other = (int(g) for g in counts.groups())
    over, confirmed_db = await _overbooking(database_url)
    return {
        f"{tag}_reservations_per_s": float(rate.group(1)),
        f"{tag}_confirmed": confirmed_http,
        f"{tag}_refused_409": refused,
        f"{tag}_5xx_or_other": errors + other,
        f"{tag}_seats_offered": CAPACITY * len(trips),
        # Requests still in flight when wrk stops are committed but unseen by wrk:
        # the database's count is the truth, wrk's a lower bound of it.
        f"{tag}_confirmed_in_db": confirmed_db,
        f"{tag}_overbooked (target 0)": over + max(0, confirmed_http - confirmed_db),
    }


async def _main() -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("the seat benchmark needs wrk (apt-get install wrk)")
    results: dict[str, Any] = {}
    with (
        devservers.mosquitto() as broker,
        devservers.postgres() as pg,
        tempfile.TemporaryDirectory(prefix="ruang-bench-seats-") as tmp,
    ):
        for tag in ("sqlite", "postgresql"):
            (Path(tmp) / tag).mkdir()
        sqlite_url = f"sqlite+aiosqlite:///{tmp}/sqlite/bench.sqlite3"
        results |= await _one_db(sqlite_url, broker.url, Path(tmp) / "sqlite", "sqlite")
        pg_url = pg.create_database("bench_seats")
        results |= await _one_db(pg_url, broker.url, Path(tmp) / "postgresql", "postgresql")
    bad = sum(v for k, v in results.items() if "overbooked" in k or "5xx" in k)
    results["verdict"] = "PASS" if bad == 0 else "FAIL"
    return results


def run() -> dict[str, Any]:
    return asyncio.run(_main())


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
