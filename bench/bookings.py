"""Benchmark: booking writes and availability search through the HTTP API, measured from outside.

Method (as a new user would run it): `ruang cloud serve` runs in its own process
(settings from `RUANG_*` variables, PostgreSQL from `launch.devservers.postgres()`,
then the embedded default, a SQLite file), on the generated 5,000-desk bench
building (20 floors x 10 zones x 25 desks) with 5,000 people. Debian's `wrk` is
the load generator in another process: 32 connections on 2 threads POST
/api/v1/bookings with an admin bearer token, every request for its own desk and
slot (request n books desk n mod 5,000 for hour n div 5,000 after tomorrow
00:00 UTC, for person n mod 5,000), so every request should succeed: the figure
is the throughput of the constraint-checked write path, not of the conflict
path (the tests pin that). A short warm-up run comes first. Successful bookings
are counted twice: 201s seen by wrk, and rows added to `bookings`.

Ratio: on PostgreSQL, `pgbench` (32 clients, 2 threads, same server, same run)
inserts one row a transaction into a table with the same exclusion constraint
as `bookings` (desk =, tstzrange &&); the API's bookings/s are reported as a
ratio to it, which is what stays comparable on a loaded machine.

Availability: `wrk` with one connection (one person searching; p99 is then the
service time, not queueing behind 31 others) GETs /api/v1/availability for the
whole building (08:00-17:00 UTC of a day 20 days ahead, on which 1,200 desks are
booked, so 3,800 come back in every run).

Targets (issue 16): >= 1,000 bookings/s with p99 < 100 ms on PostgreSQL, >= 500/s
on SQLite, availability p99 < 100 ms. `verdict` is FAIL when any misses.
Run: `python -m bench bookings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from cloud.buildings.layout import (
    BuildingSpec,
    DeskSpec,
    FloorSpec,
    Layout,
    SiteSpec,
    ZoneSpec,
    apply_layout,
)
from cloud.db.engine import make_engine, migrate
from cloud.db.tables import BOOKINGS, PEOPLE
from cloud.people.auth import mint_dev_token
from cloud.settings import CloudSettings
from launch import devservers

CONNECTIONS = 32
THREADS = 2
WARMUP_S = 3
BOOKING_S = 10
SEARCH_S = 8
SEARCH_DAY = 20
SEARCH_BOOKED = 1200
FLOORS, ZONES, DESKS_PER_ZONE = 20, 10, 25
DESKS = FLOORS * ZONES * DESKS_PER_ZONE
PEOPLE_N = DESKS

TARGET_PG_PER_S = 1000.0
TARGET_SQLITE_PER_S = 500.0
TARGET_P99_MS = 100.0

# One booking per request; globals, not locals, so thread:set() reaches them
# (a top-level `local` would shadow what setup() sets per thread).
BOOKING_LUA = r"""
counter = 0
tid = 0
ok = 0
other = 0
base = 0
nthreads = 1

function setup(thread)
  thread:set("tid", thread_n or 0)
  thread_n = (thread_n or 0) + 1
  threads = threads or {}
  table.insert(threads, thread)
end

function init(args)
  base = tonumber(args[1])
  nthreads = tonumber(args[2])
  counter = 0
end

function request()
  local n = base + tid + counter * nthreads
  counter = counter + 1
  local i = n % DESKS
  local h = math.floor(n / DESKS)
  local f = math.floor(i / 250)
  local z = math.floor((i % 250) / 25)
  local d = i % 25
  local body = string.format(
    '{"desk_id":"F%02d-Z%d-D%02d","person_id":"bench-p%04d",' ..
    '"starts_at":"%s","ends_at":"%s"}',
    f, z, d, i, slot(h), slot(h + 1))
  return wrk.format("POST", "/api/v1/bookings", nil, body)
end

function slot(h)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", DAY0 + h * 3600)
end

function response(status, headers, body)
  if status == 201 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local okn, othern, used = 0, 0, 0
  for _, t in ipairs(threads) do
    okn = okn + t:get("ok")
    othern = othern + t:get("other")
    used = used + t:get("counter")
  end
  io.write(string.format(
    'WRKJSON {"ok":%d,"other":%d,"issued":%d,"requests":%d,"duration_us":%d,' ..
    '"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    okn, othern, used, summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
"""

SEARCH_LUA = r"""
function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,' ..
    '"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""

# pgbench: the anchor. Same exclusion constraint as bookings' ex_bookings_desk_overlap.
PGBENCH_TABLE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
DROP TABLE IF EXISTS pgbench_bookings;
DROP SEQUENCE IF EXISTS pgbench_n;
CREATE SEQUENCE pgbench_n;
CREATE TABLE pgbench_bookings (
  id bigserial PRIMARY KEY,
  desk_id varchar(64) NOT NULL,
  person_id varchar(64) NOT NULL,
  starts_at timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  status varchar(16) NOT NULL DEFAULT 'booked',
  CONSTRAINT ex_pgbench_desk EXCLUDE USING gist
    (desk_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
    WHERE (status IN ('booked', 'checked_in'))
);
"""
PGBENCH_SCRIPT = """
INSERT INTO pgbench_bookings (desk_id, person_id, starts_at, ends_at)
SELECT 'D' || (n % 5000), 'P' || (n % 5000),
       now() + (n / 5000) * interval '1 hour', now() + (n / 5000 + 1) * interval '1 hour'
FROM (SELECT nextval('pgbench_n') AS n) AS q;
"""

# pgbench running the API's own booking transaction on the API's database (same
# statements a POST /api/v1/bookings sends: BEGIN, the advisory locks, desk context
# and person, the booking INSERT, the webhook event INSERT, COMMIT), 40+ days ahead
# so that it never meets the API runs' slots: what the database alone allows.
_DESK = (
    "'F' || lpad(((:n::bigint % 5000) / 250)::text, 2, '0')"
    " || '-Z' || (((:n::bigint % 5000) % 250) / 25)"
    " || '-D' || lpad(((:n::bigint % 5000) % 25)::text, 2, '0')"
)
_SLOT = (
    "date_trunc('day', now()) + interval '40 days' + (:n::bigint / 5000 + {}) * interval '1 hour'"
)
_PERSON = "'bench-p' || lpad((:n::bigint % 5000)::text, 4, '0')"
PGBENCH_API_TXN = f"""
\\set n random(1, 3000000)
BEGIN;
SELECT pg_advisory_xact_lock(:n::bigint), pg_advisory_xact_lock(-(:n::bigint));
SELECT d.id, d.mode, d.assigned_person_id, z.reserved_for_agency, s.timezone,
  s.max_booking_hours, s.max_days_ahead, s.one_desk_per_person_per_slot, s.checkin_grace_min,
  p.id, p.kind, p.agency, p.valid_from, p.valid_until
FROM desks d LEFT JOIN zones z ON z.id = d.zone_id LEFT JOIN floors f ON f.id = d.floor_id
  LEFT JOIN buildings b ON b.id = f.building_id LEFT JOIN sites s ON s.id = b.site_id
  LEFT JOIN people p ON p.id = {_PERSON}
WHERE d.id = {_DESK};
INSERT INTO bookings (desk_id, person_id, starts_at, ends_at, status, exclusive_person, created_at)
VALUES ({_DESK}, {_PERSON}, {_SLOT.format(0)}, {_SLOT.format(1)}, 'booked', true, now())
ON CONFLICT DO NOTHING RETURNING *;
INSERT INTO integration_events (kind, data, created_at)
VALUES ('booking.created', '{{"bench": true}}', now());
COMMIT;
"""


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


def load() -> str:
    """The 1/5/15-minute load averages, for the record beside a figure."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _seed(database_url: str) -> None:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        await apply_layout(engine, _layout())
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(
                insert(PEOPLE),
                [
                    {"id": f"bench-p{i:04d}", "kind": "asn", "name": f"bench {i}", "role": "asn",
                     "created_at": now}
                    for i in range(PEOPLE_N)
                ],
            )  # fmt: skip
            # 1,200 active bookings on the search day: the whole-building search
            # works through them and returns the other 3,800 desks.
            day = _search_day()
            await conn.execute(
                insert(BOOKINGS),
                [
                    {"desk_id": desk, "person_id": f"bench-p{i:04d}", "status": "booked",
                     "starts_at": day + timedelta(hours=9), "ends_at": day + timedelta(hours=10),
                     "exclusive_person": True, "created_at": now}
                    for i, desk in enumerate(_desk_ids()[:SEARCH_BOOKED])
                ],
            )  # fmt: skip
    finally:
        await engine.dispose()


def _desk_ids() -> list[str]:
    return [
        f"F{f:02d}-Z{z}-D{d:02d}"
        for f in range(FLOORS)
        for z in range(ZONES)
        for d in range(DESKS_PER_ZONE)
    ]


async def _count_bookings(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(BOOKINGS)) or 0)
    finally:
        await engine.dispose()


@dataclass
class _Cloud:
    url: str
    token: str
    pid: int


@contextlib.contextmanager
def _cloud(database_url: str, mqtt_url: str, tmp: Path) -> Iterator[_Cloud]:
    """`ruang cloud serve` in its own process, configured the way users configure it."""
    port = devservers.free_port()
    env = {
        **os.environ,
        "RUANG_DATABASE_URL": database_url,
        "RUANG_MQTT_URL": mqtt_url,
        "RUANG_MQTT_CLIENT_ID": f"bench-bookings-{tmp.name}",
        "RUANG_HTTP_PORT": str(port),
        "RUANG_TELEMETRY_SQLITE_PATH": str(tmp / "telemetry.sqlite3"),
        "RUANG_AUTH_DEV_KEY_PATH": str(tmp / "dev-key.pem"),
        "RUANG_SNAPSHOT_KEY_PATH": str(tmp / "snapshot-key.pem"),
    }
    ruang = Path(sys.executable).with_name("ruang")
    log = (tmp / "cloud.log").open("wb")
    proc = subprocess.Popen(
        [str(ruang), "cloud", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        devservers.wait_for_port(port, timeout=120, proc=proc)
        settings = CloudSettings(auth_dev_key_path=tmp / "dev-key.pem")
        token = mint_dev_token(settings, "bench-admin", ["admin"])
        yield _Cloud(f"http://127.0.0.1:{port}", token, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used: the cost that a busy shared
    machine does not blur, unlike wall-clock rates."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(
    cloud: _Cloud,
    script: str,
    path: str,
    seconds: int,
    connections: int,
    threads: int,
    args: list[str],
) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is missing: apt-get install wrk (make system-deps does)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
             "--timeout", "10s", "-s", f.name,
             "-H", f"Authorization: Bearer {cloud.token}",
             "-H", "Content-Type: application/json",
             f"{cloud.url}{path}", "--", *args],
            check=True, capture_output=True, text=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
    finally:
        os.unlink(f.name)
    match = re.search(r"^WRKJSON (.*)$", out, re.M)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    result: dict[str, Any] = json.loads(match.group(1))
    return result


def _booking_script(day0: int) -> str:
    return f"DESKS = {DESKS}\nDAY0 = {day0}\n" + BOOKING_LUA


def _search_day() -> datetime:
    # A day of its own (the booking runs fill tomorrow, pgbench 40+ days ahead), so the
    # search always works through the same seeded bookings and returns the same desks.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=SEARCH_DAY)


def _search_path() -> str:
    day = _search_day()
    start, end = (
        (day + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        (day + timedelta(hours=17)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return f"/api/v1/availability?start={start}&end={end}"


def _check_search(cloud: _Cloud) -> int:
    req = urllib.request.Request(
        cloud.url + _search_path(), headers={"Authorization": f"Bearer {cloud.token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return len(json.load(r)["desks"])


def _one_db(
    database_url: str,
    mqtt_url: str,
    tmp: Path,
    tag: str,
    pg: devservers.Postgres | None = None,
) -> dict[str, Any]:
    asyncio.run(_seed(database_url))
    out: dict[str, Any] = {}
    if pg is not None:
        out["pgbench_api_transaction_tps"] = _pgbench(
            pg, database_url.rsplit("/", 1)[1], PGBENCH_API_TXN, None
        )
    day0 = int(
        (datetime.now(UTC) + timedelta(days=1))
        .replace(hour=0, minute=0, second=0, microsecond=0)
        .timestamp()
    )
    script = _booking_script(day0)
    with _cloud(database_url, mqtt_url, tmp) as cloud:
        warm = _wrk(
            cloud, script, "/api/v1/bookings", WARMUP_S, CONNECTIONS, THREADS, ["0", str(THREADS)]
        )
        before = asyncio.run(_count_bookings(database_url))
        out[f"{tag}_load_before"] = load()
        cpu0 = cpu_s(cloud.pid)
        run = _wrk(
            cloud,
            script,
            "/api/v1/bookings",
            BOOKING_S,
            CONNECTIONS,
            THREADS,
            [str(warm["issued"] + 1000), str(THREADS)],
        )
        cpu = cpu_s(cloud.pid) - cpu0
        added = asyncio.run(_count_bookings(database_url)) - before
        seconds = run["duration_us"] / 1e6
        out[f"{tag}_bookings_per_s"] = run["ok"] / seconds
        out[f"{tag}_booking_rows_added_per_s"] = added / seconds
        out[f"{tag}_booking_non_201"] = run["other"] + run["errors"]
        out[f"{tag}_booking_p50_ms"] = run["p50_us"] / 1000
        out[f"{tag}_booking_p99_ms"] = run["p99_us"] / 1000
        out[f"{tag}_server_cpu_ms_per_booking"] = cpu * 1000 / max(1, run["requests"])
        free = _check_search(cloud)
        cpu0 = cpu_s(cloud.pid)
        search = _wrk(cloud, SEARCH_LUA, _search_path(), SEARCH_S, 1, 1, [])
        cpu = cpu_s(cloud.pid) - cpu0
        out[f"{tag}_server_cpu_ms_per_search"] = cpu * 1000 / max(1, search["requests"])
        out[f"{tag}_availability_5000_desks_p50_ms"] = search["p50_us"] / 1000
        out[f"{tag}_availability_5000_desks_p99_ms"] = search["p99_us"] / 1000
        out[f"{tag}_availability_free_desks"] = free
        out[f"{tag}_availability_non_2xx"] = search["non2xx"] + search["errors"]
        out[f"{tag}_load_after"] = load()
    return out


def _pgbench(pg: devservers.Postgres, database: str, script: str, setup: str | None) -> float:
    pgbench = devservers.find_binary("pgbench", "/usr/lib/postgresql/*/bin/pgbench")
    psql = devservers.find_binary("psql", "/usr/lib/postgresql/*/bin/psql")
    conn = ["-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user]
    if setup is not None:
        subprocess.run(
            [psql, *conn, "-d", database, "-v", "ON_ERROR_STOP=1", "-qc", setup],
            check=True, capture_output=True,
        )  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [pgbench, *conn, "-n", "-M", "prepared", "-f", f.name, "-c", str(CONNECTIONS),
             "-j", str(THREADS), "-T", str(BOOKING_S), database],
            capture_output=True, text=True, timeout=BOOKING_S + 60,
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    match = re.search(r"tps = ([\d.]+)", out.stdout)
    if match is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out.stdout}")
    return float(match.group(1))


def _verdicts(r: dict[str, Any]) -> dict[str, Any]:
    checks = {
        "postgresql bookings/s >= 1,000": r["postgresql_bookings_per_s"] >= TARGET_PG_PER_S,
        "postgresql booking p99 < 100 ms": r["postgresql_booking_p99_ms"] < TARGET_P99_MS,
        "sqlite bookings/s >= 500": r["sqlite_bookings_per_s"] >= TARGET_SQLITE_PER_S,
        "availability 5,000 desks p99 < 100 ms (postgresql)": (
            r["postgresql_availability_5000_desks_p99_ms"] < TARGET_P99_MS
        ),
        "availability 5,000 desks p99 < 100 ms (sqlite)": (
            r["sqlite_availability_5000_desks_p99_ms"] < TARGET_P99_MS
        ),
        "every booking request answered 201": (
            r["postgresql_booking_non_201"] == 0 and r["sqlite_booking_non_201"] == 0
        ),
    }
    out: dict[str, Any] = {
        f"target {name}": "PASS" if ok else "FAIL" for name, ok in checks.items()
    }
    out["verdict"] = "PASS" if all(checks.values()) else "FAIL"
    return out


def run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with (
        devservers.mosquitto() as broker,
        devservers.postgres() as pg,
        tempfile.TemporaryDirectory(prefix="ruang-bench-bookings-") as tmp,
    ):
        pg_url = pg.create_database("bench_bookings")
        pg.create_database("bench_pgbench")
        results["pgbench_load_before"] = load()
        results["pgbench_exclusion_insert_tps"] = _pgbench(
            pg, "bench_pgbench", PGBENCH_SCRIPT, PGBENCH_TABLE
        )
        (Path(tmp) / "pg").mkdir()
        results |= _one_db(pg_url, broker.url, Path(tmp) / "pg", "postgresql", pg)
        results["postgresql_ratio_to_pgbench"] = (
            results["postgresql_bookings_per_s"] / results["pgbench_exclusion_insert_tps"]
        )
        results["postgresql_ratio_to_pgbench_api_transaction"] = (
            results["postgresql_bookings_per_s"] / results["pgbench_api_transaction_tps"]
        )
        (Path(tmp) / "sqlite").mkdir()
        sqlite_url = f"sqlite+aiosqlite:///{tmp}/sqlite/bench.sqlite3"
        results |= _one_db(sqlite_url, broker.url, Path(tmp) / "sqlite", "sqlite")
    results |= _verdicts(results)
    return results


if __name__ == "__main__":
    started = time.monotonic()
    print(json.dumps(run(), indent=2))
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
