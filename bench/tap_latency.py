"""Tap-to-API latency through the real broker, and tap-to-LED latency at the desk.

Topology as deployed: Mosquitto, `ruang cloud serve` (SQLite) and `ruang edge run`
each in their own process; the desk unit simulators and the HTTP poller in this
one. For each of N taps (alternating check-in and check-out over 20 desks) we
time from the moment the badge frame is written to the pty until
  - the LED command is back on the serial line (local decision, no network), and
  - `GET /api/v1/desks/{id}` shows the new state (edge -> MQTT -> ingestion -> SQL -> API).
The API is polled every 2 ms, which bounds the resolution of the second figure.

The taps run twice on the same processes: first on a quiet broker, then with
background telemetry flowing (`LOAD_RATE` msg/s of presence and heartbeats for
500 other desks bound to 50 other nodes, published by bench/telemetry_load.py
in its own process). The cloud must ingest that load while it answers; the
rate it actually applied during the loaded taps is reported
(`background_msgs_per_s`, read from /api/v1/ingest/stats) and held to 95 % of
the offered rate, so a run where the load did not arrive cannot pass.
Target: tap -> API p99 < 50 ms with the load flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.targets import check
from bench.telemetry_load import load_floors
from launch import devservers

DESKS = 20
LOAD_RATE = 5_000.0
LOAD_NODES, LOAD_DESKS = 50, 10
TARGET_P99_MS = 50.0
CPU_WINDOW_S = 4.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def _measure(taps: int) -> dict[str, Any]:
    from simulators.floor import SimulatedFloor

    with devservers.mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
        port = devservers.free_port()
        env = {
            **os.environ,
            "RUANG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/cloud.sqlite3",
            "RUANG_MQTT_URL": broker.url,
            "RUANG_HTTP_PORT": str(port),
            "RUANG_TELEMETRY_SQLITE_PATH": f"{tmp}/telemetry.sqlite3",
            "RUANG_LOG_LEVEL": "WARNING",
            "RUANG_AUTH_DEV_KEY_PATH": f"{tmp}/dev-key.pem",
        }
        # The desk and node lists need an operator's token; the dev key signs it.
        from cloud.people.auth import mint_dev_token
        from cloud.settings import CloudSettings

        token = mint_dev_token(
            CloudSettings(auth_dev_key_path=Path(tmp) / "dev-key.pem"), "bench", ["admin"]
        )
        env.pop("RUANG_INFLUX_URL", None)
        procs: list[asyncio.subprocess.Process] = []
        async with SimulatedFloor(count=DESKS, heartbeat_s=3600) as floor:
            config = Path(tmp) / "edge.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "node_id": "bench-node",
                        "mqtt_url": broker.url,
                        "state_dir": f"{tmp}/edge",
                        "desk_units": [{"desk": d, "port": p} for d, p in floor.paths.items()],
                    }
                )
            )
            # The cloud takes a node's word only for desks the layout binds to it.
            layout = Path(tmp) / "layout.yaml"
            layout.write_text(
                yaml.safe_dump(
                    {
                        "site": {"id": "bench-site", "name": "Bench site"},
                        "buildings": [{"id": "bench-b", "name": "Bench", "floors": [{
                            "id": "bench-f", "level": 1, "name": "L1", "node": "bench-node",
                            "zones": [{"id": "bench-z", "name": "Z",
                                       "desks": [{"id": d} for d in floor.paths]}],
                        }, *load_floors(LOAD_NODES, LOAD_DESKS)]}],
                    }
                )
            )  # fmt: skip
            env["RUANG_LAYOUT_FILE"] = str(layout)
            try:
                for args in (["cloud", "serve"], ["edge", "run", "--config", str(config)]):
                    procs.append(
                        await asyncio.create_subprocess_exec(
                            sys.executable,
                            "-m",
                            "launch.cli",
                            *args,
                            env=env,
                            stdout=asyncio.subprocess.DEVNULL,
                        )
                    )
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}",
                    headers={"Authorization": f"Bearer {token}"},
                ) as client:
                    await _wait_ready(client, set(floor.paths))
                    quiet = await _taps(client, floor, taps)
                    assert procs[0].pid is not None
                    loaded = await _under_load(client, floor, taps, broker.url, procs[0].pid)
                    return {
                        **loaded,
                        "tap_to_api_p50_ms_no_load": quiet["tap_to_api_p50_ms"],
                        "tap_to_api_p99_ms_no_load": quiet["tap_to_api_p99_ms"],
                    }
            finally:
                for proc in procs:
                    if proc.returncode is None:
                        proc.terminate()
                for proc in procs:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(proc.wait(), 10)
                    if proc.returncode is None:
                        proc.kill()


async def _wait_ready(client: httpx.AsyncClient, desks: set[str]) -> None:
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(httpx.HTTPError):
                known = {d["id"] for d in (await client.get("/api/v1/desks")).json()}
                nodes = (await client.get("/api/v1/nodes")).json()
                online = {n["id"] for n in nodes if n["online"]}
                if desks <= known and "bench-node" in online:
                    return
            await asyncio.sleep(0.1)


async def _applied(client: httpx.AsyncClient) -> int:
    return int((await client.get("/api/v1/ingest/stats")).json()["applied"])


async def _under_load(
    client: httpx.AsyncClient, floor: Any, taps: int, url: str, cloud_pid: int
) -> dict[str, Any]:
    """The taps again while bench/telemetry_load.py publishes LOAD_RATE msg/s.

    Before the taps, the cloud's CPU time over a few seconds of load alone says
    what ingesting the background costs it (% of one core; process CPU time, so a
    busy machine does not inflate it).
    """
    load = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.telemetry_load", url, str(LOAD_RATE),
        str(LOAD_NODES), str(LOAD_DESKS),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert load.stdin is not None and load.stdout is not None
    try:
        async with asyncio.timeout(30):
            await load.stdout.readline()  # "ready"
        await asyncio.sleep(2.0)  # let the ingestion reach its steady state
        cpu0, t0 = _cpu_seconds(cloud_pid), time.perf_counter()
        await asyncio.sleep(CPU_WINDOW_S)
        cloud_cpu = 100.0 * (_cpu_seconds(cloud_pid) - cpu0) / (time.perf_counter() - t0)
        applied, started = await _applied(client), time.perf_counter()
        figures = await _taps(client, floor, taps)
        rate = (await _applied(client) - applied) / (time.perf_counter() - started)
    finally:
        load.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(load.wait(), 10)
        if load.returncode is None:
            load.kill()
            await load.wait()
    figures["background_msgs_per_s"] = round(rate, 1)
    figures["cloud_cpu_pct_ingesting_background"] = round(cloud_cpu, 1)
    return figures


async def _taps(client: httpx.AsyncClient, floor: Any, taps: int) -> dict[str, Any]:
    desks = list(floor.sims.items())
    api_ms: list[float] = []
    led_ms: list[float] = []
    for i in range(taps):
        desk, sim = desks[i % len(desks)]
        badge = f"04{i % len(desks):06X}"
        want = "free" if (i // len(desks)) % 2 else "occupied"
        before = len(sim.led_history)
        led_at: list[float] = []
        led_task = asyncio.create_task(
            sim.wait_led(lambda _state, s=sim, n=before: len(s.led_history) > n, timeout=10)
        )
        led_task.add_done_callback(lambda _t, marks=led_at: marks.append(time.perf_counter()))
        t0 = time.perf_counter()
        await sim.tap(badge)
        async with asyncio.timeout(10):
            while True:
                state = (await client.get(f"/api/v1/desks/{desk}")).json().get("state")
                if state == want:
                    api_ms.append((time.perf_counter() - t0) * 1000)
                    break
                await asyncio.sleep(0.002)
        await led_task
        led_ms.append((led_at[0] - t0) * 1000)
    return {
        "taps": taps,
        "tap_to_api_p50_ms": statistics.median(api_ms),
        "tap_to_api_p99_ms": _percentile(api_ms, 99),
        "tap_to_api_max_ms": max(api_ms),
        "tap_to_led_p50_ms": statistics.median(led_ms),
        "tap_to_led_p99_ms": _percentile(led_ms, 99),
    }


def run(taps: int = 200) -> dict[str, Any]:
    figures = asyncio.run(_measure(taps))
    check(figures, "tap_to_api_p99_ms", "<", TARGET_P99_MS, " ms")
    check(figures, "background_msgs_per_s", ">=", 0.95 * LOAD_RATE)
    return figures
