"""Desk unit driver, against the desk unit simulator on a real pty: the device-driver shape."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from edge.devices import DeviceDriver
from edge.devices.deskunit import DeskUnitConfig, DeskUnitDriver
from ruang import contract
from ruang.backoff import Backoff
from simulators.deskunit import DeskUnitSimulator
from tests.helpers import eventually

FAST = Backoff(base=0.05, cap=0.2)


class Recorded:
    """The node side of a desk (edge/desks.py), reduced to a log of what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, object]] = []

    def badge(self, desk: str, badge: str) -> None:
        self.seen.append(("badge", desk, badge))

    def presence(self, desk: str, present: bool) -> None:
        self.seen.append(("presence", desk, present))

    def hello(self, desk: str) -> None:
        self.seen.append(("hello", desk, None))


@contextlib.asynccontextmanager
async def running(driver: DeskUnitDriver) -> AsyncIterator[DeskUnitDriver]:
    task = asyncio.create_task(driver.run())
    try:
        yield driver
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _of(out: list[contract.Message], kind: type[contract.Message]) -> list[contract.Message]:
    return [m for m in out if isinstance(m, kind)]


async def test_desk_unit_is_a_device_driver_that_reports_its_health() -> None:
    out: list[contract.Message] = []
    async with DeskUnitSimulator(serial="RU-DU-000042") as sim:
        config = DeskUnitConfig(desk="L1-07", port=sim.path)
        driver = DeskUnitDriver(config, "edge-d1", out.append, Recorded(), backoff=FAST)
        shaped: DeviceDriver = driver  # the same interface as radars, doors, GPS, BLE
        assert (shaped.kind, shaped.device_id) == ("deskunit", "L1-07")
        assert not driver.health().online
        async with running(driver):

            async def online() -> bool:
                return driver.health().online

            await eventually(online, timeout=5, what="unit online")
            health = driver.health()
            assert (health.node, health.device, health.kind) == ("edge-d1", "L1-07", "deskunit")
            assert health.detail == sim.path
            (status,) = _of(out, contract.UnitStatus)
            assert isinstance(status, contract.UnitStatus)
            assert (status.desk, status.online, status.unit) == ("L1-07", True, "RU-DU-000042")
        # The driver stopped: the unit is reported offline with its serial.
        last = _of(out, contract.UnitStatus)[-1]
        assert isinstance(last, contract.UnitStatus)
        assert (last.online, last.unit) == (False, "RU-DU-000042")
        assert not driver.health().online


async def test_badge_reads_go_to_the_desk_and_presence_is_decided_then_published() -> None:
    out: list[contract.Message] = []
    events = Recorded()
    async with DeskUnitSimulator() as sim:
        config = DeskUnitConfig(desk="L1-08", port=sim.path)
        async with running(DeskUnitDriver(config, "edge-d1", out.append, events, backoff=FAST)):

            async def hello_seen() -> bool:
                return ("hello", "L1-08", None) in events.seen

            await eventually(hello_seen, timeout=5, what="hello handed to the desk")
            await sim.tap(bytes.fromhex("04a1b2c3"))
            await sim.set_presence(True)

            async def presence_published() -> bool:
                return bool(_of(out, contract.Presence))

            await eventually(presence_published, timeout=5, what="presence published")
            assert ("badge", "L1-08", "04A1B2C3") in events.seen
            assert ("presence", "L1-08", True) in events.seen
            # Taps are the node's to decide: the driver publishes nothing for them.
            assert not _of(out, contract.CheckIn) and not _of(out, contract.TapRefused)


async def test_beeps_go_only_to_a_unit_that_announced_a_buzzer() -> None:
    from firmware_bridge.deskunit import Beep
    from simulators.riders import door_reader

    async with door_reader("RU-DR-000009") as reader, DeskUnitSimulator() as desk_unit:
        drivers = [
            DeskUnitDriver(DeskUnitConfig(desk=name, port=sim.path), "edge-d1", [].append,
                           Recorded(), backoff=FAST)
            for name, sim in (("door-1", reader), ("L1-08", desk_unit))
        ]  # fmt: skip
        async with running(drivers[0]), running(drivers[1]):

            async def online() -> bool:
                return all(d.state.online for d in drivers)

            await eventually(online, timeout=5, what="both units online")
            assert await drivers[0].beep(Beep(2, 80))
            # A desk unit has no buzzer: nothing is sent, and it is not an error on the line.
            assert not await drivers[1].beep(Beep(2, 80))
    assert reader.beeps == [Beep(2, 80)]
    assert desk_unit.beeps == []
    assert not any(type(f.message) is Beep for f in desk_unit.received)
