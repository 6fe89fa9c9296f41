"""Radar driver and PresenceFilter, against the LD2410 simulator on real ptys."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from edge.devices.radar import PresenceFilter, RadarConfig, RadarDriver
from firmware_bridge.ld2410 import EndConfiguration, Report, SetMaxGates, TargetState
from ruang import contract
from ruang.backoff import Backoff
from simulators.ld2410 import LD2410Simulator
from tests.helpers import eventually

NEAR = Report(TargetState.STATIONARY, 0, 0, 120, 60, 120)
EMPTY = Report(TargetState.NONE, 0, 0, 0, 0, 0)


# --- PresenceFilter (sans-io) -------------------------------------------------------------


def test_filter_turns_on_at_the_first_qualifying_report() -> None:
    f = PresenceFilter(min_energy=20, max_distance_cm=300, hold_s=5)
    assert f.update(EMPTY, 0.0) is None
    assert f.update(NEAR, 0.1) is True
    assert f.present


def test_filter_holds_presence_for_hold_s_after_the_last_target() -> None:
    f = PresenceFilter(hold_s=5)
    f.update(NEAR, 10.0)
    assert f.update(EMPTY, 14.9) is None
    assert f.present
    assert f.update(EMPTY, 15.0) is False
    assert not f.present


def test_filter_hold_restarts_with_each_qualifying_report() -> None:
    f = PresenceFilter(hold_s=5)
    f.update(NEAR, 0.0)
    f.update(NEAR, 4.0)
    assert f.update(EMPTY, 8.0) is None
    assert f.update(EMPTY, 9.0) is False


def test_filter_ignores_weak_and_distant_targets() -> None:
    f = PresenceFilter(min_energy=20, max_distance_cm=300)
    assert f.update(Report(TargetState.MOVING, 150, 19, 0, 0, 150), 0.0) is None
    assert f.update(Report(TargetState.STATIONARY, 0, 0, 301, 90, 301), 0.0) is None
    # Energy in the field of the other target kind does not count.
    assert f.update(Report(TargetState.MOVING, 100, 5, 100, 90, 100), 0.0) is None
    assert f.update(Report(TargetState.MOVING, 300, 20, 0, 0, 300), 0.0) is True


def test_filter_expire_turns_off_without_new_reports() -> None:
    f = PresenceFilter(hold_s=1)
    f.update(NEAR, 0.0)
    assert f.expire(0.5) is None
    assert f.expire(1.0) is False


# --- driver over a pty -------------------------------------------------------------------


class Clock:
    """A clock the test steps by hand, so hold times need no sleeping."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _config(port: str, **kw: object) -> RadarConfig:
    return RadarConfig(device="radar-l1-03", desk="L1-03", port=port, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(driver: RadarDriver) -> AsyncIterator[RadarDriver]:
    task = asyncio.create_task(driver.run())
    try:
        yield driver
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _presences(out: list[contract.Message]) -> list[bool]:
    return [m.present for m in out if isinstance(m, contract.Presence)]


FAST = Backoff(base=0.02, cap=0.1)


async def test_driver_configures_the_radar_on_connect_and_reports_firmware() -> None:
    out: list[contract.Message] = []
    async with LD2410Simulator(report_hz=50) as radar:
        config = _config(radar.path, max_moving_gate=4, max_static_gate=3, unmanned_s=7)
        async with running(RadarDriver(config, "edge-l1", out.append, backoff=FAST)) as driver:
            await eventually(_async(lambda: driver.online), timeout=5, what="online")
            assert (radar.state.max_moving_gate, radar.state.max_static_gate) == (4, 3)
            assert radar.state.unmanned_s == 7
            assert not radar.state.config_mode
            assert SetMaxGates(4, 3, 7) in radar.commands
            assert radar.commands[-1] == EndConfiguration()
            health = driver.health()
            assert health.online and health.kind == "radar"
            assert health.detail == "V2.04.23022511"


async def test_presence_is_published_on_change_and_off_only_after_the_hold() -> None:
    out: list[contract.Message] = []
    clock = Clock()
    async with LD2410Simulator(report_hz=50) as radar:
        config = _config(radar.path, hold_s=5.0)
        driver = RadarDriver(config, "edge-l1", out.append, backoff=FAST, clock=clock)
        async with running(driver):
            # First report: the initial state (absent) is asserted once.
            await eventually(_async(lambda: _presences(out) == [False]), timeout=5)
            radar.set_target(TargetState.STATIONARY, still_cm=120, still_energy=60)
            await eventually(_async(lambda: _presences(out) == [False, True]), timeout=5)
            radar.set_target(TargetState.NONE)
            seen = driver.reports
            await eventually(_async(lambda: driver.reports >= seen + 10), timeout=5)
            # Plenty of empty reports, but the hold has not run out on the driver's clock.
            assert _presences(out) == [False, True]
            clock.t += 5.0
            await eventually(_async(lambda: _presences(out) == [False, True, False]), timeout=5)
            msg = out[-1]
            assert isinstance(msg, contract.Presence)
            assert (msg.desk, msg.source, msg.node) == ("L1-03", "radar", "edge-l1")


async def test_unchanged_presence_is_re_asserted_every_60_s() -> None:
    out: list[contract.Message] = []
    clock = Clock()
    async with LD2410Simulator(report_hz=50) as radar:
        driver = RadarDriver(_config(radar.path), "edge-l1", out.append, backoff=FAST, clock=clock)
        async with running(driver):
            await eventually(_async(lambda: len(_presences(out)) == 1), timeout=5)
            seen = driver.reports
            await eventually(_async(lambda: driver.reports >= seen + 5), timeout=5)
            assert len(_presences(out)) == 1
            clock.t += 60.0
            await eventually(_async(lambda: _presences(out) == [False, False]), timeout=5)


async def test_garbage_on_the_line_raises_rejected_count_and_the_driver_keeps_going() -> None:
    out: list[contract.Message] = []
    async with LD2410Simulator(report_hz=50) as radar:
        driver = RadarDriver(_config(radar.path), "edge-l1", out.append, backoff=FAST)
        async with running(driver):
            await eventually(_async(lambda: driver.online), timeout=5)
            radar.fault.garbage_before_next = b"\x13\x37noise\xf4\xf3"
            radar.fault.corrupt_next = 2
            await eventually(_async(lambda: driver.rejected_frames >= 3), timeout=5)
            radar.set_target(TargetState.MOVING, moving_cm=80, moving_energy=70)
            await eventually(_async(lambda: True in _presences(out)), timeout=5)
            assert driver.health().rejected_frames == driver.rejected_frames
            assert driver.sessions == 1


async def test_unplugged_radar_goes_offline_and_is_reattached_behind_the_same_path(
    tmp_path: Path,
) -> None:
    out: list[contract.Message] = []
    link = tmp_path / "radar-l1-03"
    first = LD2410Simulator(report_hz=50)
    await first.start()
    os.symlink(first.path, link)
    driver = RadarDriver(_config(str(link)), "edge-l1", out.append, backoff=FAST)
    async with running(driver):
        await eventually(_async(lambda: driver.online), timeout=5)
        await first.close()
        await eventually(_async(lambda: not driver.online), timeout=5, what="offline")
        health = driver.health()
        assert not health.online and health.detail and health.detail.startswith("offline")
        sessions = driver.sessions
        async with LD2410Simulator(report_hz=50) as second:
            tmp_link = tmp_path / "radar-l1-03.new"
            os.symlink(second.path, tmp_link)
            os.replace(tmp_link, link)
            await eventually(_async(lambda: driver.online), timeout=10, what="re-attached")
            assert driver.sessions == sessions + 1
            assert second.state.max_moving_gate == 8 and not second.state.config_mode
            second.set_target(TargetState.MOVING, moving_cm=90, moving_energy=80)
            await eventually(_async(lambda: True in _presences(out)), timeout=5)


async def test_radar_that_never_acks_is_retried_not_fatal() -> None:
    out: list[contract.Message] = []
    async with LD2410Simulator(report_hz=50) as radar:
        radar.fault.ignore_commands = True
        driver = RadarDriver(
            _config(radar.path), "edge-l1", out.append, backoff=FAST, command_timeout_s=0.05
        )
        async with running(driver):
            await eventually(_async(lambda: driver.last_error is not None), timeout=5)
            assert not driver.online
            assert "no ACK" in (driver.health().detail or "")
            radar.fault.ignore_commands = False
            await eventually(_async(lambda: driver.online), timeout=5)


def test_config_defaults_match_the_datasheet_and_brief() -> None:
    cfg = _config("/dev/ttyUSB0")
    assert (cfg.baudrate, cfg.max_moving_gate, cfg.max_static_gate, cfg.unmanned_s) == (
        256000,
        8,
        8,
        5,
    )
    assert (cfg.min_energy, cfg.max_distance_cm, cfg.hold_s) == (20, 300, 5.0)
    with pytest.raises(ValueError):
        _config("/dev/ttyUSB0", max_moving_gate=9)


async def test_radar_bound_to_a_room_publishes_room_presence_instead_of_desk_presence() -> None:
    out: list[contract.Message] = []
    clock = Clock()
    async with LD2410Simulator(report_hz=50) as radar:
        config = RadarConfig(device="A1-L1-R1-occupancy", room="A1-L1-R1", port=radar.path)
        driver = RadarDriver(config, "edge-l1", out.append, backoff=FAST, clock=clock)
        async with running(driver):
            await eventually(_async(lambda: _rooms(out) == [False]), timeout=5)
            radar.set_target(TargetState.MOVING, moving_cm=150, moving_energy=70)
            await eventually(_async(lambda: _rooms(out) == [False, True]), timeout=5)
            radar.set_target(TargetState.NONE)
            # Let empty reports arrive before the hold runs out on the driver's clock: a
            # report still in flight with the target would restart the hold after the jump.
            seen = driver.reports
            await eventually(_async(lambda: driver.reports >= seen + 10), timeout=5)
            clock.t += 5.0
            await eventually(_async(lambda: _rooms(out) == [False, True, False]), timeout=5)
    assert not any(isinstance(m, contract.Presence) for m in out)
    msg = out[-1]
    assert isinstance(msg, contract.RoomPresence)
    assert (msg.room, msg.sensor, msg.node) == ("A1-L1-R1", "A1-L1-R1-occupancy", "edge-l1")


@pytest.mark.parametrize("where", [{}, {"desk": "L1-03", "room": "A1-L1-R1"}])
def test_radar_config_needs_exactly_one_of_desk_or_room(where: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one of `desk` or `room`"):
        RadarConfig(device="radar-x", port="/dev/ttyUSB0", **where)


def _rooms(out: list[contract.Message]) -> list[bool]:
    return [m.present for m in out if isinstance(m, contract.RoomPresence)]


def _async(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return predicate()

    return probe
