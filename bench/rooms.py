"""Benchmark: meeting room booking throughput and the concurrency proof, over real HTTP.

Method: `ruang cloud serve` runs as its own process (PostgreSQL from
`launch.devservers.postgres()`, then a SQLite file) with a generated layout of
ROOMS rooms; the load comes from Debian's `wrk` in another process, driven by
bench/lua/rooms.lua, so the load generator never shares the server's CPU time
slices inside one Python process.

* throughput: 2 wrk threads x 32 connections for RUN_S seconds (wrk's own bound);
  every request books its own (room, hour), so nearly all succeed: created
  bookings/s over the run, p50/p99 latency;
* proof: 200 connections open at once, all booking the same room and hour (each
  wrk thread stops after as many answers as it has connections): the database's
  overlap guard must leave exactly one booking (created == 1, every other answer
  a 409, no 5xx or socket error).

Run: `python -m bench rooms`. Targets: proof exactly one booking; throughput at
least TARGET_PER_S created bookings/s on each database (loopback, 2 cores).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.targets import check, failures
from cloud.buildings.layout import BuildingSpec, FloorSpec, Layout, RoomSpec, SiteSpec, ZoneSpec
from cloud.people.auth import mint_dev_token
from cloud.settings import CloudSettings
from launch import devservers

ROOMS = 100
RUN_S = 15
RACERS = 200
TARGET_PER_S = 50.0
LUA = Path(__file__).resolve().parent / "lua" / "rooms.lua"


def _layout() -> dict[str, Any]:
    zones = [
        ZoneSpec(
            id=f"Z{z}",
            name=f"Zona {z}",
            rooms=[
                RoomSpec(id=f"R{z * 10 + r:04d}", name=f"Ruang {z * 10 + r}", capacity=4 + r)
                for r in range(10)
            ],
        )
        for z in range(ROOMS // 10)
    ]
    layout = Layout(
        site=SiteSpec(id="bench", name="Bench site", max_days_ahead=90),
        buildings=[
            BuildingSpec(
                id="B",
                name="Bench building",
                floors=[
                    FloorSpec(id="F1", level=1, name="Lantai 1", node="bench-node", zones=zones)
                ],
            )
        ],
    )
    return layout.model_dump(mode="json", exclude_none=True)


@contextlib.contextmanager
def _server(database_url: str, mqtt_url: str, tmp: Path) -> Iterator[tuple[str, str]]:
    """`ruang cloud serve` in its own process; yields (base URL, admin token)."""
    port = devservers.free_port()
    layout = tmp / "layout.json"
    layout.write_text(json.dumps(_layout()))
    env = os.environ | {
        "RUANG_DATABASE_URL": database_url,
        "RUANG_MQTT_URL": mqtt_url,
        "RUANG_MQTT_CLIENT_ID": f"ruang-bench-rooms-{port}",
        "RUANG_HTTP_HOST": "127.0.0.1",
        "RUANG_HTTP_PORT": str(port),
        "RUANG_LAYOUT_FILE": str(layout),
        "RUANG_AUTH_DEV_KEY_PATH": str(tmp / "dev-key.pem"),
        "RUANG_SNAPSHOT_KEY_PATH": str(tmp / "snapshot-key.pem"),
        "RUANG_TELEMETRY_SQLITE_PATH": str(tmp / "telemetry.sqlite3"),
    }
    ruang = shutil.which("ruang", path=str(Path(sys.executable).parent)) or "ruang"
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([ruang, "cloud", "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # bounded: 600 polls of 0.1 s
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"ruang cloud serve exited: {(tmp / 'server.log').read_text()}")
            time.sleep(0.1)
        else:
            raise RuntimeError("ruang cloud serve did not come up")
        settings = CloudSettings(auth_dev_key_path=tmp / "dev-key.pem")
        token = mint_dev_token(settings, "bench-admin", ["admin"], ttl_s=3600)
        r = httpx.post(
            f"{base}/api/v1/people/import",
            content="id,kind,name,agency,role\nbench-org,asn,Bench Organiser,Otorita IKN,asn\n",
            headers={"content-type": "text/csv", "Authorization": f"Bearer {token}"},
        )
        r.raise_for_status()
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wrk(
    base: str, token: str, mode: str, connections: int, seconds: int, per_thread: int = 0
) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is missing (apt-get install wrk)")
    day0 = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    env = os.environ | {
        "RUANG_BENCH_TOKEN": token,
        "RUANG_BENCH_MODE": mode,
        "RUANG_BENCH_ROOMS": str(ROOMS),
        "RUANG_BENCH_PER_THREAD": str(per_thread),
        "RUANG_BENCH_DAY0": day0,
    }
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(LUA), base],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("RUANG_BENCH "))
    result: dict[str, Any] = json.loads(line.removeprefix("RUANG_BENCH "))
    return result


def _one_db(database_url: str, mqtt_url: str, tmp: Path, tag: str) -> dict[str, Any]:
    with _server(database_url, mqtt_url, tmp) as (base, token):
        run = _wrk(base, token, "spread", 32, RUN_S)
        race = _wrk(base, token, "race", RACERS, 15, per_thread=RACERS // 2)
    seconds = run["duration_us"] / 1e6
    per_s = run["created"] / seconds if seconds else 0.0
    return {
        f"{tag}_created": run["created"],
        f"{tag}_refused_or_failed": run["conflicts"] + run["other"] + run["errors"],
        f"{tag}_bookings_per_s": per_s,
        f"{tag}_p50_ms": run["p50_us"] / 1000,
        f"{tag}_p99_ms": run["p99_us"] / 1000,
        f"{tag}_race_answers": race["created"] + race["conflicts"] + race["other"],
        f"{tag}_race_created": race["created"],
        f"{tag}_race_409": race["conflicts"],
        f"{tag}_race_other": race["other"] + race["errors"],
    }


def run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with (
        devservers.mosquitto() as broker,
        devservers.postgres() as pg,
        tempfile.TemporaryDirectory(prefix="ruang-bench-rooms-") as tmp,
    ):
        pg_url = pg.create_database("bench_rooms")
        (Path(tmp) / "pg").mkdir()
        results |= _one_db(pg_url, broker.url, Path(tmp) / "pg", "postgresql")
        (Path(tmp) / "sqlite").mkdir()
        sqlite_url = f"sqlite+aiosqlite:///{tmp}/sqlite/bench.sqlite3"
        results |= _one_db(sqlite_url, broker.url, Path(tmp) / "sqlite", "sqlite")
    for db in ("postgresql", "sqlite"):
        # The proof: one winner exactly, every other answer a 409 (no 5xx, no socket error).
        results[f"{db}_race_exactly_one"] = int(results[f"{db}_race_created"] == 1)
        check(results, f"{db}_race_exactly_one", ">=", 1)
        check(results, f"{db}_race_other", "<", 1)
        check(results, f"{db}_bookings_per_s", ">=", TARGET_PER_S, "/s")
    results["verdict"] = "FAIL" if failures(results) else "PASS"
    return results


if __name__ == "__main__":
    figures = run()
    print(json.dumps(figures, indent=2))
    sys.exit(0 if figures["verdict"] == "PASS" else 1)
