"""The agent deciding taps from a signed snapshot pushed over a real Mosquitto, and away release."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiomqtt
import pytest

from edge.agent import EdgeAgent
from edge.decisions import LED_AWAY_WARNING
from edge.devices.deskunit import DeskUnitConfig
from edge.settings import EdgeSettings
from firmware_bridge.deskunit import LedPattern
from launch import devservers
from ruang import contract
from simulators.floor import SimulatedFloor
from tests.helpers import eventually

from .snapshots import body, keypair, sign
from .test_agent import of_type, running, watcher

pytestmark = pytest.mark.servers

ALICE, BOB = "04A1B2C3", "0411223344AABB"


async def push(broker: devservers.Mosquitto, snapshot: contract.Snapshot) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish(
            contract.topic_for(snapshot), contract.encode(snapshot), qos=1, retain=True
        )


async def test_snapshot_decides_booking_holder_in_and_others_out(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    node = "edge-snap-1"
    key, pem = keypair()
    (tmp_path / "snap.pub").write_bytes(pem)
    now = time.time()
    async with SimulatedFloor(count=2) as floor:
        (d1, sim1), (d2, sim2) = floor.sims.items()
        snap = sign(key, node, body(
            3, now=now,
            desks=(contract.SnapshotDesk(desk=d1), contract.SnapshotDesk(desk=d2, mode="drop_in")),
            bookings=(contract.SnapshotBooking(id="bk-9", desk=d1, person="p-alice",
                                               start=now - 60, end=now + 3600),),
            badges=(contract.SnapshotBadge(badge=ALICE, person="p-alice"),
                    contract.SnapshotBadge(badge=BOB, person="p-bob")),
        ))  # fmt: skip
        await push(mosquitto_server, snap)
        settings = EdgeSettings(
            node_id=node, mqtt_url=mosquitto_server.url, state_dir=tmp_path / "edge",
            snapshot_public_key=tmp_path / "snap.pub",
            desk_units=[DeskUnitConfig(desk=d, port=p) for d, p in floor.paths.items()],
        )  # fmt: skip
        async with (
            watcher(mosquitto_server.url, node) as seen,
            running(EdgeAgent(settings)) as agent,
        ):
            await eventually(
                lambda: _true(agent.book.snapshot is not None), what="snapshot applied"
            )
            # The booked desk shows blue before anyone arrives.
            await sim1.wait_led(lambda led: led.b > 0 and led.g == 0, timeout=5)
            await sim1.tap(BOB)
            await sim1.wait_led(
                lambda led: led.pattern == LedPattern.BLINK and led.g > 0, timeout=5
            )
            await sim1.tap(ALICE)
            await sim1.wait_led(
                lambda led: led.pattern == LedPattern.SOLID and led.g > 150, timeout=5
            )
            await sim2.tap("DEADBEEF")
            await sim2.wait_led(
                lambda led: led.pattern == LedPattern.BLINK and led.g == 0, timeout=5
            )

            async def outcomes() -> bool:
                return len(of_type(seen, contract.TapRefused)) == 2 and bool(
                    of_type(seen, contract.CheckIn)
                )

            await eventually(outcomes, what="two refusals and a check-in")
            reasons = sorted(m.reason for m in of_type(seen, contract.TapRefused))  # type: ignore[attr-defined]
            assert reasons == ["booked_by_other", "unknown_badge"]
            checkin = of_type(seen, contract.CheckIn)[0]
            assert (checkin.booking, checkin.person) == ("bk-9", "p-alice")  # type: ignore[attr-defined]
    # Clear the retained snapshot so other tests on the shared broker start clean.
    async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as client:
        await client.publish(contract.topic_for(snap), b"", qos=1, retain=True)


async def test_vacant_checked_in_desk_warns_then_releases_with_reason_left(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    node = "edge-away-1"
    async with SimulatedFloor(count=1) as floor:
        desk, sim = next(iter(floor.sims.items()))
        settings = EdgeSettings(
            node_id=node, mqtt_url=mosquitto_server.url, state_dir=tmp_path / "edge",
            away_s=1.5, away_warning_s=1.0,
            desk_units=[DeskUnitConfig(desk=desk, port=floor.paths[desk])],
        )  # fmt: skip
        async with watcher(mosquitto_server.url, node) as seen, running(EdgeAgent(settings)):
            await sim.set_presence(True)
            await sim.tap(ALICE)
            await sim.wait_led(lambda led: led.g > 150, timeout=5)
            await sim.set_presence(False)
            warning = await sim.wait_led(lambda led: led.pattern == LedPattern.PULSE, timeout=10)
            assert (warning.r, warning.g) == (LED_AWAY_WARNING.r, LED_AWAY_WARNING.g)
            await sim.wait_led(lambda led: led.pattern == LedPattern.OFF, timeout=10)

            async def left() -> list[contract.Message]:
                return [m for m in of_type(seen, contract.CheckOut) if m.reason == "left"]  # type: ignore[attr-defined]

            (checkout,) = await eventually(left, what="checkout with reason left")
            assert checkout.desk == desk  # type: ignore[attr-defined]


async def test_presence_back_before_release_cancels_it(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    async with SimulatedFloor(count=1) as floor:
        desk, sim = next(iter(floor.sims.items()))
        settings = EdgeSettings(
            node_id="edge-away-2", mqtt_url=mosquitto_server.url, state_dir=tmp_path / "edge",
            away_s=3.0, away_warning_s=2.5,
            desk_units=[DeskUnitConfig(desk=desk, port=floor.paths[desk])],
        )  # fmt: skip
        async with running(EdgeAgent(settings)) as agent:
            await sim.tap(ALICE)
            await sim.wait_led(lambda led: led.g > 150, timeout=5)
            await sim.set_presence(False)
            await sim.wait_led(lambda led: led.pattern == LedPattern.PULSE, timeout=10)
            await sim.set_presence(True)
            await sim.wait_led(
                lambda led: led.pattern == LedPattern.SOLID and led.g > 150, timeout=5
            )
            await asyncio.sleep(3.5)  # past the release time: nothing happens
            assert agent.book.occupant(desk) is not None


async def _true(value: bool) -> bool:
    return value
