"""CPU and memory of the edge agent at a realistic building load.

50 LD2410 radars reporting at 10 Hz, 200 BLE badges advertising at 1 Hz, 4 OSDP
door readers on their polled buses with the secure channel on, 1 GPS at 1 Hz,
and 72 desk units (heartbeat every 10 s, presence changes and badge taps as
people come and go), against a real Mosquitto. The radars, door readers, GPS
and desk units are simulators in this process speaking the real bytes on ptys;
the agent runs in its own process (`python -m bench.edge_load agent CONFIG`).
BLE adverts cannot cross a process boundary, so the agent process also hosts
the simulated air and feeds its adverts through bleak's facade: its cost (about
200 adverts/s) is counted in the agent's figure, which therefore overstates the
agent slightly.

We sample the agent's CPU time from /proc (user + system time of the process,
not wall-clock) over a steady window after warm-up, as % of one core, and its
resident memory. The target for a Raspberry Pi 4 (roughly 4x slower than this
machine) is < 5 % of one core here and < 80 MB; both are checked
(bench/targets.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.targets import check
from launch import devservers

RADARS, BADGES, DOORS, DESK_UNITS = 50, 200, 4, 72
TARGET_CPU_PCT, TARGET_RSS_MB = 5.0, 80.0
IBEACON_UUID = "E2C56DB5DFFB48D2B060D0F5A71096E0"
WARMUP_S, WINDOW_S = 15.0, 30.0


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _measure() -> dict[str, Any]:
    from edge.devices.door_keys import create_node_key_file
    from simulators.floor import SimulatedFloor
    from simulators.gps import GpsSimulator
    from simulators.ld2410 import LD2410Simulator
    from simulators.osdp_reader import OsdpReaderSim

    rng = random.Random(7)
    with devservers.mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
        kek = create_node_key_file(Path(tmp) / "node.key")
        scbk = bytes(rng.getrandbits(8) for _ in range(16))
        readers = [OsdpReaderSim(scbk, cp_port=Path(tmp) / f"door{i}") for i in range(DOORS)]
        async with contextlib.AsyncExitStack() as stack:
            for reader in readers:
                reader.start()
                stack.callback(reader.stop)
            radars = [
                await stack.enter_async_context(LD2410Simulator(report_hz=10))
                for _ in range(RADARS)
            ]
            for radar in radars:
                radar.set_target(2, still_cm=80, still_energy=60)
            gps = await stack.enter_async_context(GpsSimulator(speed_kmh=25))
            # Desks L2-D01.. (the radars watch L1): a unit on each, heartbeat every 10 s.
            units = await stack.enter_async_context(
                SimulatedFloor(count=DESK_UNITS, floor="L2", heartbeat_s=10.0)
            )
            settings = _config(tmp, broker.url, radars, gps, readers, scbk, kek)
            settings["desk_units"] = [{"desk": d, "port": p} for d, p in units.paths.items()]
            config = Path(tmp) / "edge.yaml"
            config.write_text(yaml.safe_dump(settings))
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.edge_load", "agent", str(config),
                env={**os.environ, "RUANG_LOG_LEVEL": "WARNING"},
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                async with _counting(broker.port) as counts:
                    figures = await _observe(proc, radars, readers, list(units.sims.values()), rng)
                # Proof that the load was real: what the agent published meanwhile.
                kinds = ("presence", "access", "position", "badge_presence", "device_health")
                for kind in (*kinds, "heartbeat", "checkin", "checkout", "tap_refused"):
                    figures[f"published_{kind}"] = counts.get(kind, 0)
                return figures
            finally:
                if proc.returncode is None:
                    proc.terminate()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(proc.wait(), 10)
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()


def _config(
    tmp: str, url: str, radars: list[Any], gps: Any, readers: list[Any], scbk: bytes, kek: bytes
) -> dict[str, Any]:
    from edge.devices.door_keys import seal_key

    sealed = seal_key(scbk.hex(), kek)
    always = [
        {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "00:00",
            "end": "24:00",
        }
    ]
    return {
        "node_id": "bench-edge",
        "mqtt_url": url,
        "state_dir": f"{tmp}/state",
        "node_key_file": f"{tmp}/node.key",
        "health_interval_s": 30,
        "radars": [
            {"device": f"RADAR-{i:02d}", "desk": f"L1-D{i + 1:02d}", "port": radar.path}
            for i, radar in enumerate(radars)
        ],
        "gps": [{"device": "SHUTTLE-01", "port": gps.path, "publish_interval_s": 5}],
        "doors": [
            {
                "id": f"DOOR-{i}",
                "port": str(reader.cp_port),
                "scbk_sealed": sealed,
                "schedule": always,
            }
            for i, reader in enumerate(readers)
        ],
        "ble": {
            "enabled": True,
            "scanners": [{"id": "scan-1", "zone": "L1-Z1", "adapter": "hci0"}],
            "badges": [
                {"id": f"badge-{i:03d}", "ibeacon": {"uuid": IBEACON_UUID, "major": 1, "minor": i}}
                for i in range(BADGES)
            ],
        },
    }


@contextlib.asynccontextmanager
async def _counting(port: int) -> Any:
    import aiomqtt

    counts: dict[str, int] = {}
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe("ruang/v1/nodes/bench-edge/#", qos=1)

        async def count() -> None:
            async for msg in client.messages:
                kind = str(msg.topic).rsplit("/", 1)[-1]
                counts[kind] = counts.get(kind, 0) + 1

        task = asyncio.create_task(count())
        try:
            yield counts
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _observe(
    proc: asyncio.subprocess.Process,
    radars: list[Any],
    readers: list[Any],
    units: list[Any],
    rng: random.Random,
) -> dict[str, Any]:
    assert proc.pid is not None
    await asyncio.sleep(WARMUP_S)
    if proc.returncode is not None:
        raise RuntimeError(f"agent exited early with {proc.returncode}: see its output above")
    cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
    reports0 = sum(r.reports_sent for r in radars)
    deadline = t0 + WINDOW_S
    cards = taps = 0
    while time.monotonic() < deadline:
        # People come and go: radar targets change, cards are read at doors.
        for radar in rng.sample(radars, 5):
            radar.set_target(rng.choice([0, 2]), still_cm=80, still_energy=60)
        rng.choice(readers).present_card(bytes.fromhex("04A1B2C3"))
        cards += 1
        # ... sit down at or leave a desk, and tap a badge on one.
        for unit in rng.sample(units, 5):
            await unit.set_presence(rng.random() < 0.5)
        await rng.choice(units).tap(f"04{rng.randrange(1 << 24):06X}")
        taps += 1
        await asyncio.sleep(2.0)
    cpu1, t1 = _cpu_seconds(proc.pid), time.monotonic()
    return {
        "agent_cpu_pct_of_one_core": 100.0 * (cpu1 - cpu0) / (t1 - t0),
        "agent_rss_mb": _rss_mb(proc.pid),
        "radar_reports_per_s": (sum(r.reports_sent for r in radars) - reports0) / (t1 - t0),
        "door_card_reads": cards,
        "desk_unit_taps": taps,
        "window_s": t1 - t0,
    }


async def _agent(config: str) -> None:
    """The agent process: the real EdgeAgent, with the simulated BLE air hosted in-process."""
    from edge.agent import EdgeAgent
    from edge.settings import load_edge_settings
    from simulators.ble import BleAirSimulator

    settings = load_edge_settings(config)
    air = BleAirSimulator(noise_db=3.0)
    uuid = bytes.fromhex(IBEACON_UUID)
    for i in range(BADGES):
        air.add_ibeacon(f"b{i}", uuid, 1, i, {"hci0": -60.0 - (i % 25)})
    agent = EdgeAgent(settings, ble_scanner_factory=air.scanner_factory)

    async def advertise() -> None:
        while True:
            air.step()
            await asyncio.sleep(1.0)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(agent.run())
        tg.create_task(advertise())


def run() -> dict[str, Any]:
    figures = asyncio.run(_measure())
    check(figures, "agent_cpu_pct_of_one_core", "<", TARGET_CPU_PCT, " %")
    check(figures, "agent_rss_mb", "<", TARGET_RSS_MB, " MB")
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "agent":
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(_agent(sys.argv[2]))
    else:
        print(run())
