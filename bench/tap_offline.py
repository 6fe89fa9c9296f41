"""Tap-to-LED latency at the desk with the uplink down: the edge deciding alone.

An in-process EdgeAgent holds a signed snapshot (200 desks, 1,000 bookings, 5,000
badges) on disk, as a node does after an outage; its broker URL points at a
closed port, so every event goes to the outbox. Twenty desk unit simulators on
ptys tap badges (alternating check-in by the booking holder and check-out); we
time from writing the badge frame to the pty until the LED frame is back at the
simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from launch import devservers
from ruang import contract

DESKS = 200
SIMULATED = 20
BOOKINGS_PER_DESK = 5
BADGES = 5_000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _badge(i: int) -> str:
    return f"04{i:06X}"


def _body(floor: str, now: float) -> contract.SnapshotBody:
    desks = [f"{floor}-D{i:02d}" for i in range(1, DESKS + 1)]
    bookings = []
    for d, desk in enumerate(desks):
        # Two-hour slots through the day; the one under way belongs to person d.
        for slot in range(BOOKINGS_PER_DESK):
            start = now - 3600 + slot * 7200
            person = d if slot == 0 else (d + slot * DESKS) % BADGES
            bookings.append(
                contract.SnapshotBooking(
                    id=f"{d}-{slot}", desk=desk, person=f"p{person}", start=start, end=start + 7200
                )
            )
    return contract.SnapshotBody(
        version=1,
        issued_at=now,
        valid_until=now + 86_400,
        desks=tuple(contract.SnapshotDesk(desk=d) for d in desks),
        bookings=tuple(bookings),
        badges=tuple(
            contract.SnapshotBadge(badge=_badge(i), person=f"p{i}") for i in range(BADGES)
        ),
    )


async def _measure(taps: int) -> dict[str, float]:
    from cryptography.hazmat.primitives.asymmetric import ec

    from cloud.fleet.snapshots import SnapshotSigner
    from edge.agent import EdgeAgent
    from edge.settings import DeskUnitConfig, EdgeSettings
    from simulators.floor import SimulatedFloor

    signer = SnapshotSigner(ec.generate_private_key(ec.SECP256R1()))
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "edge"
        state.mkdir()
        key = Path(tmp) / "snapshot.pub"
        key.write_bytes(signer.public_pem)
        snapshot = signer.sign("bench-offline", _body("L1", time.time()))
        (state / "snapshot.json").write_bytes(contract.encode(snapshot))
        async with SimulatedFloor(count=SIMULATED, heartbeat_s=3600) as floor:
            agent = EdgeAgent(
                EdgeSettings(
                    node_id="bench-offline",
                    # Nothing listens there: the uplink stays down for the whole run.
                    mqtt_url=f"mqtt://127.0.0.1:{devservers.free_port()}",
                    state_dir=state,
                    desk_units=[DeskUnitConfig(desk=d, port=p) for d, p in floor.paths.items()],
                    snapshot_public_key=key,
                )
            )
            assert agent.book.snapshot is not None, agent.snapshots.last_error
            task = asyncio.create_task(agent.run())
            try:
                sims = list(floor.sims.items())
                # Every unit says hello and gets its first LED before we time anything.
                for _, sim in sims:
                    await sim.wait_settled(timeout=10)
                await asyncio.sleep(0.5)
                led_ms: list[float] = []
                for i in range(taps):
                    desk, sim = sims[i % SIMULATED]
                    holder = int(desk.rsplit("D", 1)[1]) - 1
                    before = len(sim.led_history)
                    t0 = time.perf_counter()
                    await sim.tap(_badge(holder))
                    await sim.wait_led(
                        lambda _s, s=sim, n=before: len(s.led_history) > n, timeout=10
                    )
                    led_ms.append((time.perf_counter() - t0) * 1000)
                    await sim.wait_settled(timeout=10)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return {
        "taps": float(taps),
        "tap_to_led_offline_p50_ms": statistics.median(led_ms),
        "tap_to_led_offline_p99_ms": _percentile(led_ms, 99),
        "tap_to_led_offline_max_ms": max(led_ms),
    }


def run(taps: int = 1_000) -> dict[str, float]:
    return asyncio.run(_measure(taps))


if __name__ == "__main__":
    print(run())
