"""Door access figures: card read to published AccessDecision, and audit log appends per second.

The card-read latency runs the real path: a simulated OSDP reader (libosdp PD)
on a socat pty pair, the `DoorController` in secure channel at 9600 baud,
the local policy, the SQLite audit log (synchronous=FULL) and the publish
callback. It is timed from `present_card()` to the callback, so it includes
the CP's poll interval and the serial transfer at 9600 baud.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

READS = 50
APPENDS = 2000
SCBK = bytes.fromhex("00112233445566778899aabbccddeeff")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def _card_latency(tmp: Path, reads: int) -> list[float]:
    from edge.devices.access_policy import AccessPolicy, AllowList, BadgeEntry, WeeklySchedule
    from edge.devices.audit_log import AuditLog
    from edge.devices.door import DoorConfig, DoorController
    from edge.devices.door_keys import generate_node_key, seal_key
    from ruang import contract
    from simulators.osdp_reader import OsdpReaderSim

    kek = generate_node_key()
    uid = bytes.fromhex("04A1B2C3D4E5F6")
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[float] = asyncio.Queue()

    def publish(message: contract.Message) -> None:
        if isinstance(message, contract.AccessDecision):
            arrived.put_nowait(time.perf_counter())
        elif isinstance(message, contract.DoorStatus) and message.condition == "online":
            online.set()

    online = asyncio.Event()
    with OsdpReaderSim(SCBK, cp_port=tmp / "bus") as sim, AuditLog(tmp / "audit.db") as audit:
        door = DoorConfig(
            id="door-bench",
            port=str(sim.cp_port),
            scbk_sealed=seal_key(SCBK.hex(), kek),
            schedule=WeeklySchedule.always(),
        )
        allow = AllowList(version=1, entries=(BadgeEntry(badge=uid.hex().upper(), person="B"),))
        controller = DoorController(
            [door],
            node_id="bench",
            publish=publish,
            policy=AccessPolicy(allow, {}),
            audit=audit,
            kek=kek,
        )
        task = loop.create_task(controller.run())
        try:
            await asyncio.wait_for(online.wait(), 15)
            samples = []
            for _ in range(reads):
                started = time.perf_counter()
                sim.present_card(uid)
                done = await asyncio.wait_for(arrived.get(), 10)
                samples.append((done - started) * 1000)
                # Let the reader's commands drain so reads do not queue behind them.
                await asyncio.sleep(0.2)
            return samples
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _appends_per_s(tmp: Path, n: int) -> float:
    from edge.devices.audit_log import AuditLog

    with AuditLog(tmp / "appends.db") as log:
        started = time.perf_counter()
        for i in range(n):
            log.append(door="door-a", badge=f"{i:08X}", granted=True, reason="allowed")
        return n / (time.perf_counter() - started)


def run(reads: int = READS, appends: int = APPENDS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-osdp-") as tmp:
        samples = asyncio.run(_card_latency(Path(tmp), reads))
        rate = _appends_per_s(Path(tmp), appends)
    return {
        "card_to_decision_p50_ms": _percentile(samples, 50),
        "card_to_decision_p99_ms": _percentile(samples, 99),
        "card_to_decision_mean_ms": statistics.fmean(samples),
        "audit_appends_per_s": rate,
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:<32} {value:,.2f}")
