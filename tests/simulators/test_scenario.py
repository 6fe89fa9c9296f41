"""Scenario loading, validation messages, the player, and the office-day generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators.scenario import (
    Scenario,
    ScenarioError,
    Step,
    dump_scenario,
    load_scenario,
    office_day,
    run_scenario,
)

EXAMPLE = """
- {at: 2.0, desk: D-01, tap: "04A1B2C3"}
- {at: 1.5, desk: D-01, presence: true}
- {at: 3, desk: D-01, button: 1, long: true}
"""


class Recorder:
    def __init__(self, name: str, log: list[tuple[str, str, object]]) -> None:
        self.name, self.log = name, log

    async def set_presence(self, present: bool) -> int:
        self.log.append((self.name, "presence", present))
        return 0

    async def tap(self, uid: bytes | str) -> int:
        self.log.append((self.name, "tap", uid))
        return 0

    async def press(self, button: int, long: bool = False) -> int:
        self.log.append((self.name, "press", (button, long)))
        return 0


def test_yaml_scenario_loads_sorted_by_time() -> None:
    scenario = load_scenario(EXAMPLE)
    assert [step.at for step in scenario.steps] == [1.5, 2.0, 3.0]
    assert scenario.steps[1].tap == "04A1B2C3"
    assert scenario.steps[2].long is True


def test_json_file_and_bundled_yaml_file_load(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"at": 0, "desk": "X", "presence": False}]))
    assert load_scenario(str(path)).steps == (Step(at=0, desk="X", presence=False),)
    bundled = Path(__file__).resolve().parents[2] / "simulators" / "scenarios" / "morning.yaml"
    assert load_scenario(bundled).desks == {"L1-D01", "L1-D02"}


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"at": 1, "desk": "D-01"}, "exactly one of presence, tap, button (found: none)"),
        ({"at": 1, "desk": "D-01", "presence": True, "button": 2}, "found: presence, button"),
        ({"at": 1, "desk": "D-01", "tap": "04A1B2"}, "tap: UID must be 4, 7 or 10 bytes"),
        ({"at": 1, "desk": "D-01", "tap": "zz"}, "tap: must be hex"),
        ({"at": -1, "desk": "D-01", "presence": True}, "at: Input should be greater than"),
        ({"at": 1, "desk": "D-01", "button": 300}, "button: Input should be less than"),
        ({"at": 1, "desk": "D-01", "presence": True, "colour": 3}, "colour: Extra inputs"),
        ({"at": 1, "desk": "D-01", "presence": True, "long": True}, "long only applies"),
    ],
)
def test_bad_steps_are_refused_with_step_index_and_field(
    step: dict[str, object], expected: str
) -> None:
    good = {"at": 0, "desk": "D-01", "presence": True}
    with pytest.raises(ScenarioError) as info:
        load_scenario([good, step])
    message = str(info.value)
    assert f"step 1 (at={step['at']})" in message
    assert expected in message


def test_non_list_and_unparsable_scenarios_are_refused() -> None:
    with pytest.raises(ScenarioError, match="list of steps"):
        load_scenario("just a string")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario("- {at: 1, desk: [\n")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario("/nonexistent/scenario.yaml")


async def test_runner_plays_steps_in_order_on_the_right_desks() -> None:
    log: list[tuple[str, str, object]] = []
    desks = {"D-01": Recorder("D-01", log), "D-02": Recorder("D-02", log)}
    played = await run_scenario(
        EXAMPLE + "- {at: 3.5, desk: D-02, presence: false}\n", desks, speed=1000
    )
    assert played == 4
    assert log == [
        ("D-01", "presence", True),
        ("D-01", "tap", "04A1B2C3"),
        ("D-01", "press", (1, True)),
        ("D-02", "presence", False),
    ]


async def test_runner_refuses_unknown_desks_before_playing_anything() -> None:
    log: list[tuple[str, str, object]] = []
    with pytest.raises(ScenarioError, match="do not exist: D-01"):
        await run_scenario(EXAMPLE, {"L1-D01": Recorder("L1-D01", log)})
    assert log == []


def test_office_day_is_deterministic_valid_and_never_double_books_a_desk() -> None:
    desks = [f"L1-D{i:02d}" for i in range(1, 21)]
    day = office_day(desks, people=30, seed=7)
    assert day == office_day(desks, people=30, seed=7)
    assert day != office_day(desks, people=30, seed=8)
    assert load_scenario(json.loads(dump_scenario(day))) == day
    assert len(day.desks) >= 10
    for desk in desks:
        presence = [s.presence for s in day.steps if s.desk == desk and s.presence is not None]
        # Strictly alternating on/off per desk: nobody sits on an occupied desk.
        assert presence == [True, False] * (len(presence) // 2)
        taps = [s.tap for s in day.steps if s.desk == desk and s.tap is not None]
        assert taps[0::2] == taps[1::2]  # each person taps in and out with the same badge
    assert isinstance(day, Scenario) and day.duration < 9 * 3600
