"""GPS driver against the GPS simulator on real ptys (accelerated simulated time)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from edge.devices.gps import FixState, GpsConfig, GpsDriver
from firmware_bridge.nmea import GGA, RMC, VTG
from ruang import contract
from ruang.backoff import Backoff
from simulators.gps import GpsSimulator
from tests.helpers import eventually

FAST = Backoff(base=0.02, cap=0.1)
EAST = ((-0.97, 116.70), (-0.97, 116.71))
"""An east-west route: constant latitude, heading 90°."""


def _async(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return predicate()

    return probe


@contextlib.asynccontextmanager
async def running(driver: GpsDriver) -> AsyncIterator[GpsDriver]:
    task = asyncio.create_task(driver.run())
    try:
        yield driver
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _positions(out: list[contract.Message]) -> list[contract.Position]:
    return [m for m in out if isinstance(m, contract.Position)]


def test_fix_state_merges_gga_rmc_and_vtg() -> None:
    fix = FixState()
    t = dt.time(1, 0, 0)
    fix.apply(GGA("GN", t, -0.97, 116.7, 2, 11, 0.8, 40.0), 1.0)
    fix.apply(RMC("GN", t, True, -0.97, 116.7, 10.0, 45.0, dt.date(2024, 8, 17)), 1.0)
    assert fix.speed_kmh == pytest.approx(18.52)
    fix.apply(VTG("GN", 46.0, None, 10.0, 18.0, "A"), 1.0)
    assert (fix.fix_quality, fix.satellites, fix.hdop) == (2, 11, 0.8)
    assert (fix.speed_kmh, fix.heading_deg, fix.has_fix) == (18.0, 46.0, True)
    fix.apply(RMC("GN", t, False, None, None, None, None, None), 2.0)
    assert not fix.has_fix


async def test_positions_are_published_at_the_configured_rate_not_per_sentence() -> None:
    out: list[contract.Message] = []
    # 50 simulated seconds per real second: 150 sentences/s on the line.
    async with GpsSimulator(EAST, speed_kmh=36.0, time_factor=50) as gps:
        config = GpsConfig(device="gps-shuttle-1", port=gps.path, publish_interval_s=0.2)
        driver = GpsDriver(config, "edge-shuttle", out.append, backoff=FAST)
        async with running(driver):
            await eventually(_async(lambda: len(_positions(out)) >= 3), timeout=5)
            # Many sentences per publication, whatever the machine's speed.
            assert driver.sentences > 3 * driver.published
            pos = _positions(out)[-1]
            assert pos.vehicle == "gps-shuttle-1" and pos.node == "edge-shuttle"
            assert pos.lat == pytest.approx(-0.97, abs=1e-6)
            assert 116.70 <= pos.lon <= 116.71
            assert pos.speed_kmh == pytest.approx(36.0, abs=0.01)
            assert pos.heading_deg == pytest.approx(90.0, abs=0.01)
            assert (pos.fix_quality, pos.satellites, pos.hdop) == (1, 9, 0.9)
            # Decimal degrees match where the simulator put the vehicle (to 1e-5 minute).
            sample = gps.last_sample
            assert sample is not None
            assert abs(pos.lon - sample.lon) < 0.01
            health = driver.health()
            assert health.kind == "gps" and health.online
            assert health.detail == "fix quality 1, 9 satellites"


async def test_lost_fix_publishes_nothing_and_health_says_no_fix() -> None:
    out: list[contract.Message] = []
    async with GpsSimulator(EAST, time_factor=50) as gps:
        config = GpsConfig(device="gps-shuttle-1", port=gps.path, publish_interval_s=0.1)
        driver = GpsDriver(config, "edge-shuttle", out.append, backoff=FAST)
        async with running(driver):
            await eventually(_async(lambda: len(_positions(out)) >= 1), timeout=5)
            gps.lose_fix()
            await eventually(_async(lambda: driver.health().detail == "no fix"), timeout=5)
            count = len(_positions(out))
            sentences = driver.sentences
            # Several publish intervals' worth of no-fix sentences go by.
            await eventually(_async(lambda: driver.sentences >= sentences + 30), timeout=5)
            await asyncio.sleep(0.25)
            assert len(_positions(out)) == count
            assert driver.health().online
            gps.regain_fix()
            await eventually(_async(lambda: len(_positions(out)) > count), timeout=5)


async def test_bad_checksums_are_counted_and_positions_keep_coming() -> None:
    out: list[contract.Message] = []
    async with GpsSimulator(EAST, time_factor=50) as gps:
        config = GpsConfig(device="gps-shuttle-1", port=gps.path, publish_interval_s=0.1)
        driver = GpsDriver(config, "edge-shuttle", out.append, backoff=FAST)
        async with running(driver):
            await eventually(_async(lambda: driver.sentences > 0), timeout=5)
            gps.fault.bad_checksum_next = 5
            gps.fault.garbage_before_next = b"\x00\xffline noise\r\n"
            await eventually(_async(lambda: driver.rejected_frames >= 6), timeout=5)
            count = len(_positions(out))
            await eventually(_async(lambda: len(_positions(out)) > count), timeout=5)
            assert driver.health().rejected_frames >= 6


async def test_unplugged_receiver_goes_offline_and_is_reattached(tmp_path: Path) -> None:
    out: list[contract.Message] = []
    link = tmp_path / "gps-shuttle-1"
    first = GpsSimulator(EAST, time_factor=50)
    await first.start()
    os.symlink(first.path, link)
    config = GpsConfig(device="gps-shuttle-1", port=str(link), publish_interval_s=0.1)
    driver = GpsDriver(config, "edge-shuttle", out.append, backoff=FAST)
    async with running(driver):
        await eventually(_async(lambda: driver.online), timeout=5)
        await first.close()
        await eventually(_async(lambda: not driver.online), timeout=5)
        assert (driver.health().detail or "").startswith("offline")
        async with GpsSimulator(EAST, time_factor=50) as second:
            os.symlink(second.path, tmp_path / "new")
            os.replace(tmp_path / "new", link)
            await eventually(_async(lambda: driver.sessions == 2 and driver.online), timeout=10)
            count = len(_positions(out))
            await eventually(_async(lambda: len(_positions(out)) > count), timeout=5)


def test_config_vehicle_defaults_to_the_device_id() -> None:
    config = GpsConfig(device="gps-1", port="/dev/ttyACM0")
    assert (config.vehicle, config.baudrate, config.publish_interval_s) == ("gps-1", 9600, 5.0)
    assert GpsConfig(device="gps-1", vehicle="bus-7", port="x").vehicle == "bus-7"
