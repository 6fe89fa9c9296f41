"""The agent with BLE badge scanning: a badge's button at a desk checks in through the desk
unit's LED; with no Bluetooth adapter the agent says so and keeps the other devices running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.devices.ble_config import BleBadgeConfig, BleConfig, BleScannerConfig, IBeaconIdentity
from edge.devices.deskunit import DeskUnitConfig
from edge.settings import EdgeSettings
from launch import devservers
from ruang import contract
from simulators.ble import BleAirSimulator
from simulators.floor import SimulatedFloor
from tests.helpers import eventually

from .test_agent import of_type, running, watcher

pytestmark = pytest.mark.servers

UUID = bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90")


def ble_config(desk: str) -> BleConfig:
    return BleConfig(
        enabled=True,
        scanners=[BleScannerConfig(id="scan-1", zone="L1-Z1", desk=desk, adapter="hci0")],
        badges=[
            BleBadgeConfig(id="badge-7", ibeacon=IBeaconIdentity(uuid=UUID.hex(), major=1, minor=7))
        ],
        dwell_s=0.5,
    )


async def test_ble_button_tap_at_a_desk_checks_in_and_lights_the_desk_unit(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    air = BleAirSimulator(noise_db=0.0)
    async with SimulatedFloor(count=1) as floor:
        desk, sim = next(iter(floor.sims.items()))
        settings = EdgeSettings(
            node_id="edge-ble-1", mqtt_url=mosquitto_server.url, state_dir=tmp_path / "edge",
            ble=ble_config(desk), desk_units=[DeskUnitConfig(desk=desk, port=floor.paths[desk])],
        )  # fmt: skip
        agent = EdgeAgent(settings, ble_scanner_factory=air.scanner_factory)
        async with watcher(mosquitto_server.url, "edge-ble-1") as seen, running(agent):
            air.add_ibeacon("b7", UUID, 1, 7, {"hci0": -50.0})

            async def scanning() -> bool:
                return "hci0" in air.active

            await eventually(scanning, what="BLE scan started")
            air.press_button("b7")
            for _ in range(5):
                air.step()
                await asyncio.sleep(0.05)
            await sim.wait_led(lambda led: led.g > 150, timeout=5)

            async def checked_in() -> list[contract.Message]:
                return of_type(seen, contract.CheckIn)

            (checkin,) = await eventually(checked_in, what="BLE check-in published")
            assert checkin.badge == "ble:badge-7" and checkin.desk == desk  # type: ignore[attr-defined]


async def test_no_bluetooth_adapter_is_reported_and_desk_units_keep_working(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    async with SimulatedFloor(count=1) as floor:
        desk, sim = next(iter(floor.sims.items()))
        settings = EdgeSettings(
            node_id="edge-ble-2", mqtt_url=mosquitto_server.url, state_dir=tmp_path / "edge",
            ble=ble_config(desk), desk_units=[DeskUnitConfig(desk=desk, port=floor.paths[desk])],
        )  # fmt: skip
        # The real BleakScanner: this machine has no adapter and no D-Bus.
        async with running(EdgeAgent(settings)) as agent:
            (ble,) = agent.devices

            async def reported() -> bool:
                h = ble.health()
                return not h.online and "Bluetooth" in (h.detail or "")

            await eventually(reported, what="BLE reported offline with the reason")
            await sim.tap(bytes.fromhex("04A1B2C3"))
            await sim.wait_led(lambda led: led.g > 150, timeout=5)
