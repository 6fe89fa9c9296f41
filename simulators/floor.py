"""A floor of simulated desk units, and the `ruang sim deskunits` entry point.

`SimulatedFloor` starts N `DeskUnitSimulator`s, each on its own pty, named like
the real building (desk `L1-D01`, unit serial `RU-DU-000001`), plays scenarios
against them and closes every pty on exit. `main_deskunits` is what the CLI
runs: print one `DESK_ID PTY_PATH` line per desk, then play until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from simulators.deskunit import DeskUnitSimulator
from simulators.scenario import Scenario, load_scenario, office_day, run_scenario


def desk_id(floor: str, index: int) -> str:
    """Desk ids as printed on the desks: L1-D01 .. L1-D99, then L1-D100."""
    return f"{floor}-D{index:02d}"


def unit_serial(number: int) -> str:
    return f"RU-DU-{number:06d}"


class SimulatedFloor:
    """N simulated desk units. Use as `async with SimulatedFloor(20) as floor`."""

    def __init__(
        self,
        count: int = 20,
        *,
        floor: str = "L1",
        first_serial: int = 1,
        heartbeat_s: float = 10.0,
        **sim_options: Any,
    ) -> None:
        if count < 1:
            raise ValueError("a floor needs at least one desk")
        self.floor = floor
        self.sims: dict[str, DeskUnitSimulator] = {
            desk_id(floor, i): DeskUnitSimulator(
                unit_serial(first_serial + i - 1), heartbeat_s=heartbeat_s, **sim_options
            )
            for i in range(1, count + 1)
        }

    @property
    def paths(self) -> dict[str, str]:
        """{desk id: pty path} (valid once started)."""
        return {desk: sim.path for desk, sim in self.sims.items()}

    async def start(self) -> None:
        started: list[DeskUnitSimulator] = []
        try:
            for sim in self.sims.values():
                await sim.start()
                started.append(sim)
        except BaseException:
            # Do not leak the ptys already opened if one fails (fd limit, ...).
            for sim in started:
                await sim.close()
            raise

    async def close(self) -> None:
        for sim in self.sims.values():
            await sim.close()

    async def __aenter__(self) -> SimulatedFloor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run_scenario(
        self, scenario: Scenario | str | Path | list[Any], *, speed: float = 1.0
    ) -> int:
        """Play a scenario on this floor's desks; returns the number of steps played."""
        return await run_scenario(scenario, self.sims, speed=speed)

    async def run_office_days(
        self, *, speed: float = 60.0, people: int | None = None, badges: Sequence[str] | None = None
    ) -> None:
        """Plays generated office days one after another (a new seed each day) until cancelled.

        `badges`: UIDs the crowd taps (see `office_day`); random UIDs without them.
        """
        desks = list(self.sims)
        crowd = people if people is not None else max(1, len(desks) * 4 // 5)
        day = 0
        while True:
            await self.run_scenario(
                office_day(desks, people=crowd, seed=day, badges=badges), speed=speed
            )
            day += 1


async def main_deskunits(
    count: int,
    scenario: str | None,
    speed: float,
    print_fn: Callable[[str], object] = print,
) -> None:
    """Start `count` desk units, print `DESK_ID PTY_PATH` lines, play until cancelled.

    `scenario` is a YAML/JSON file; without one, generated office days (one after
    another, each with a new seed) keep the floor busy.
    """
    script = load_scenario(scenario) if scenario is not None else None
    async with SimulatedFloor(count) as floor:
        for desk, path in floor.paths.items():
            print_fn(f"{desk} {path}")
        if script is not None:
            await floor.run_scenario(script, speed=speed)
            print_fn(f"scenario finished ({len(script.steps)} steps); units stay up")
            await asyncio.Event().wait()
        await floor.run_office_days(speed=speed)


def run_forever(count: int = 20, scenario: str | None = None, speed: float = 60.0) -> None:
    """Blocking helper for `python -m simulators.floor`-style use."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_deskunits(count, scenario, speed))


if __name__ == "__main__":
    run_forever()
