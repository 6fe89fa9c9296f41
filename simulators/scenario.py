"""Scripted desk activity: timed steps, their validation, a player, and an office-day generator.

A scenario is a list of steps such as::

    - {at: 1.5, desk: L1-D01, presence: true}
    - {at: 2.0, desk: L1-D01, tap: "04A1B2C3"}
    - {at: 3,   desk: L1-D01, button: 1, long: true}

`at` is seconds from the start of the scenario (in scenario time; the player
divides by `speed`). Each step does exactly one thing. `load_scenario` accepts
YAML or JSON (text, a file path, or already-parsed data) and raises
`ScenarioError` naming the step and field at fault. `office_day` generates a
plausible day of hot-desking for demos.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from firmware_bridge.deskunit import UID_LENGTHS


class ScenarioError(ValueError):
    """A scenario that cannot be played, with a message that points at the bad step."""


class Step(BaseModel):
    """One action at one desk at one time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(ge=0, description="seconds from scenario start")
    desk: str = Field(min_length=1)
    presence: bool | None = None
    tap: str | None = Field(default=None, description="badge UID in hex, 4/7/10 bytes")
    button: int | None = Field(default=None, ge=0, le=255)
    long: bool = False

    @field_validator("tap")
    @classmethod
    def _uid_hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cleaned = value.replace(" ", "").replace(":", "")
        try:
            uid = bytes.fromhex(cleaned)
        except ValueError:
            raise ValueError(f"must be hex, got {value!r}") from None
        if len(uid) not in UID_LENGTHS:
            raise ValueError(f"UID must be 4, 7 or 10 bytes, got {len(uid)}")
        return cleaned.upper()

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [
            name for name in ("presence", "tap", "button") if getattr(self, name) is not None
        ]
        if len(actions) != 1:
            found = ", ".join(actions) or "none"
            raise ValueError(f"a step needs exactly one of presence, tap, button (found: {found})")
        if self.long and self.button is None:
            raise ValueError("long only applies to a button step")
        return self


class Scenario(BaseModel):
    """Steps in time order (loading sorts them; ties keep file order)."""

    model_config = ConfigDict(frozen=True)

    steps: tuple[Step, ...]

    @property
    def desks(self) -> set[str]:
        return {step.desk for step in self.steps}

    @property
    def duration(self) -> float:
        return self.steps[-1].at if self.steps else 0.0


def _describe(errors: list[Any], data: Sequence[Any]) -> str:
    lines = []
    for error in errors:
        loc = list(error["loc"])
        where = "scenario"
        if loc and isinstance(loc[0], int):
            index = loc.pop(0)
            step = data[index] if index < len(data) else None
            at = step.get("at") if isinstance(step, dict) else None
            where = f"step {index}" + (f" (at={at})" if at is not None else "")
        field = ".".join(str(part) for part in loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {field + ': ' if field else ''}{message}")
    return "invalid scenario:\n  " + "\n  ".join(lines)


def load_scenario(source: str | Path | Sequence[Any] | Scenario) -> Scenario:
    """Validate a scenario from YAML/JSON text, a .yaml/.yml/.json path, or parsed data."""
    if isinstance(source, Scenario):
        return source
    data: Any
    if isinstance(source, Path) or (
        isinstance(source, str)
        and "\n" not in source
        and source.endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
        data = _parse_text(text, str(path))
    elif isinstance(source, str):
        data = _parse_text(source, "scenario text")
    else:
        data = source
    if isinstance(data, dict) and "steps" in data:
        data = data["steps"]
    if not isinstance(data, list):
        raise ScenarioError("a scenario is a list of steps (or a mapping with a 'steps' list)")
    steps: list[Step] = []
    errors: list[Any] = []
    for index, raw in enumerate(data):
        try:
            steps.append(Step.model_validate(raw))
        except ValidationError as exc:
            errors.extend({**err, "loc": (index, *err["loc"])} for err in exc.errors())
    if errors:
        raise ScenarioError(_describe(errors, data))
    return Scenario(steps=tuple(sorted(steps, key=lambda step: step.at)))


def _parse_text(text: str, what: str) -> Any:
    try:
        # JSON is a subset of YAML, so one parser serves both formats.
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{what} is not valid YAML/JSON: {exc}") from exc


def dump_scenario(scenario: Scenario) -> str:
    """JSON text that `load_scenario` reads back to the same scenario."""
    return json.dumps([step.model_dump(exclude_defaults=True) for step in scenario.steps], indent=1)


class DeskActor(Protocol):
    """What the player needs from a desk: DeskUnitSimulator satisfies it."""

    async def set_presence(self, present: bool) -> int: ...

    async def tap(self, uid: bytes | str) -> int: ...

    async def press(self, button: int, long: bool = False) -> int: ...


async def apply_step(step: Step, desk: DeskActor) -> None:
    """Perform one step on one desk."""
    if step.presence is not None:
        await desk.set_presence(step.presence)
    elif step.tap is not None:
        await desk.tap(step.tap)
    elif step.button is not None:
        await desk.press(step.button, step.long)


async def run_scenario(
    scenario: Scenario | str | Path | Sequence[Any],
    desks: Mapping[str, DeskActor],
    *,
    speed: float = 1.0,
) -> int:
    """Play `scenario` against `desks`, `speed` times faster than scenario time.

    Unknown desks are refused before anything is played. Timing follows the
    loop clock from the start, so slow steps do not accumulate drift.
    Returns the number of steps played.
    """
    scenario = load_scenario(scenario)
    if speed <= 0:
        raise ScenarioError(f"speed must be > 0, got {speed}")
    unknown = sorted(scenario.desks - set(desks))
    if unknown:
        raise ScenarioError(
            f"scenario names desks that do not exist: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(desks)) or 'none'})"
        )
    loop = asyncio.get_running_loop()
    start = loop.time()
    for step in scenario.steps:
        delay = start + step.at / speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await apply_step(step, desks[step.desk])
    return len(scenario.steps)


def office_day(
    desks: Sequence[str],
    people: int,
    seed: int = 0,
    *,
    day_s: float = 9 * 3600.0,
    arrival_window_s: float = 2 * 3600.0,
    min_stay_s: float = 1800.0,
    button_chance: float = 0.3,
    badges: Sequence[str] | None = None,
) -> Scenario:
    """A deterministic day of hot-desking on `desks` for `people` badge holders.

    Each person arrives within the first `arrival_window_s`, takes the first free
    desk (presence on, then a badge tap a few seconds later), may press the
    desk button, and leaves before `day_s` (badge tap, then presence off). A desk
    is only reused after its previous occupant left; people who find no free
    desk go home, as they would. Times are scenario seconds; play it with a
    `speed` of e.g. 600 for a ten-minute-per-second demo.

    Without `badges` everyone taps a random UID (unknown to any cloud). With
    `badges` (UIDs of a real roster) each person taps a different one of them, so
    the crowd is at most `len(badges)` and check-ins carry real names.
    """
    if not desks:
        raise ScenarioError("office_day needs at least one desk")
    if people < 0:
        raise ScenarioError("people must be >= 0")
    rng = random.Random(seed)
    free_at = dict.fromkeys(desks, 0.0)
    # One badge per person: a badge sitting at two desks at once is not a day in an office.
    known = rng.sample(list(badges), min(people, len(badges))) if badges is not None else None
    if known is not None:
        people = len(known)
    arrivals = sorted(rng.uniform(0, arrival_window_s) for _ in range(people))
    steps: list[Step] = []
    for index, arrival in enumerate(arrivals):
        if known is not None:
            badge = known[index]
        else:
            uid = rng.choice((4, 7)) * 2  # hex digits: most badges are 4- or 7-byte UIDs
            badge = "".join(rng.choice("0123456789ABCDEF") for _ in range(uid))
        free = [desk for desk in desks if free_at[desk] <= arrival]
        if not free:
            continue
        desk = rng.choice(free)
        sit = round(arrival, 1)
        tap_in = round(sit + rng.uniform(2, 20), 1)
        latest_leave = day_s - 60
        leave = round(
            min(latest_leave, tap_in + rng.uniform(min_stay_s, max(min_stay_s, day_s * 0.8))), 1
        )
        leave = max(leave, tap_in + 1)
        gone = round(leave + rng.uniform(2, 10), 1)
        steps += [
            Step(at=sit, desk=desk, presence=True),
            Step(at=tap_in, desk=desk, tap=badge),
        ]
        if rng.random() < button_chance:
            press_at = round(rng.uniform(tap_in + 1, leave), 1)
            steps.append(Step(at=press_at, desk=desk, button=rng.randint(0, 1)))
        steps += [
            Step(at=leave, desk=desk, tap=badge),
            Step(at=gone, desk=desk, presence=False),
        ]
        # A short gap before the next person, so presence off/on never coincide.
        free_at[desk] = gone + 30
    return Scenario(steps=tuple(sorted(steps, key=lambda step: step.at)))
