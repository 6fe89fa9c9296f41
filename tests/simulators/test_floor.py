"""SimulatedFloor and main_deskunits: many units, scenarios end to end, clean shutdown."""

from __future__ import annotations

import asyncio
import os

from firmware_bridge.deskunit import BadgeRead, ButtonPressed, Hello, PresenceChanged
from firmware_bridge.serial_transport import DeskUnitPort
from simulators.floor import SimulatedFloor, main_deskunits


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_floor_starts_named_units_on_distinct_ptys_and_closes_them_all() -> None:
    before = _open_fds()
    async with SimulatedFloor(20, heartbeat_s=0) as floor:
        assert list(floor.sims)[:2] == ["L1-D01", "L1-D02"]
        assert list(floor.sims)[-1] == "L1-D20"
        assert floor.sims["L1-D03"].serial == "RU-DU-000003"
        paths = floor.paths
        assert len(set(paths.values())) == 20
        assert all(os.path.exists(path) for path in paths.values())
    assert _open_fds() <= before


async def test_scenario_on_floor_reaches_a_pi_listening_on_the_desk_pty() -> None:
    scenario = """
    - {at: 0.00, desk: L1-D02, presence: true}
    - {at: 0.01, desk: L1-D02, tap: "04A1B2C3"}
    - {at: 0.02, desk: L1-D01, button: 1}
    - {at: 0.03, desk: L1-D02, button: 0, long: true}
    """
    async with SimulatedFloor(3, heartbeat_s=0) as floor:
        async with DeskUnitPort.open(floor.paths["L1-D02"]) as port:
            async with asyncio.timeout(5):
                while not isinstance((await port.receive()).message, Hello):
                    pass
                assert await floor.run_scenario(scenario, speed=1.0) == 4
                got = []
                while len(got) < 3:
                    message = (await port.receive()).message
                    if not isinstance(message, Hello):
                        got.append(message)
        assert got == [
            PresenceChanged(True),
            BadgeRead(bytes.fromhex("04A1B2C3")),
            ButtonPressed(0, True),
        ]
        assert floor.sims["L1-D02"].present is True


async def test_main_deskunits_prints_desk_paths_and_stops_cleanly_on_cancel() -> None:
    before = _open_fds()
    lines: list[str] = []
    printed = asyncio.Event()

    def record(line: str) -> None:
        lines.append(line)
        if len(lines) == 20:
            printed.set()

    task = asyncio.create_task(main_deskunits(20, None, speed=1000.0, print_fn=record))
    await asyncio.wait_for(printed.wait(), 5)
    desk, path = lines[0].split()
    assert desk == "L1-D01" and path.startswith("/dev/pts/")
    assert len({line.split()[1] for line in lines}) == 20
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert _open_fds() <= before
