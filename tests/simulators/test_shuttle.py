"""The shuttle simulator: a TripPlan driven as NMEA on a pty, read here with pyserial,
with dwell at stops, traffic delays, a dead zone and the ground truth of its arrivals."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import serial

from cloud.transport.geo import haversine_m, project
from firmware_bridge.nmea import GGA, RMC, Item, LineDecoder
from simulators.shuttle import ShuttleRun, ShuttleSimulator, sample_plan, seeded_traffic

START = 1_724_032_800.0
PLAN = sample_plan(START)


async def read_items(path: str, count: int, within_s: float = 20.0) -> list[Item]:
    """Read `count` decoded sentences from the pty through pyserial."""
    port = serial.Serial(path, baudrate=9600, timeout=0)
    decoder = LineDecoder()
    items: list[Item] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    try:
        while len(items) < count:
            assert loop.time() < deadline, f"only {len(items)} sentences"
            data = port.read(4096)
            if data:
                items.extend(decoder.feed(data))
            else:
                await asyncio.sleep(0.005)
    finally:
        port.close()
    return items[:count]


def test_ground_truth_dwells_holds_and_traffic() -> None:
    traffic = [2.0] + [1.0] * (len(PLAN.stops) - 2)
    run = ShuttleRun(PLAN, traffic=traffic, dwell_s=25)
    first, second = run.truth[0], run.truth[1]
    assert first.departure == PLAN.stops[0].departure  # leaves the terminal on time
    scheduled_run = PLAN.stops[1].arrival - PLAN.stops[0].departure
    assert second.arrival - first.departure == pytest.approx(2 * scheduled_run)
    assert second.departure - second.arrival == pytest.approx(25)
    # Standing still at a stop, moving between them.
    assert run.state(second.arrival + 5) == (PLAN.stops[1].dist_m, 0.0)
    assert run.state(first.departure + 30)[1] > 0
    assert [t.stop_id for t in run.truth] == [s.stop_id for s in PLAN.stops]
    assert seeded_traffic(5, 8) == seeded_traffic(5, 8) != seeded_traffic(6, 8)


def test_an_early_shuttle_holds_until_the_scheduled_departure() -> None:
    run = ShuttleRun(PLAN, traffic=[0.5] * (len(PLAN.stops) - 1), dwell_s=5)
    for stop, truth in zip(PLAN.stops[1:-1], run.truth[1:-1], strict=True):
        assert truth.arrival < stop.arrival
        assert truth.departure == stop.departure


async def test_nmea_on_the_pty_follows_the_trip_shape() -> None:
    run = ShuttleRun(PLAN, lead_s=0)
    async with ShuttleSimulator(run, time_factor=50) as sim:
        items = await read_items(sim.path, 60)
    ggas = [i for i in items if isinstance(i, GGA)]
    rmcs = [i for i in items if isinstance(i, RMC)]
    assert len(ggas) == 20 and all(g.has_fix for g in ggas)
    for g in ggas:
        assert g.lat is not None and g.lon is not None and g.time is not None
        assert project(PLAN.shape, g.lat, g.lon).cross_m < 1.0
        ts = dt.datetime.combine(dt.date(2024, 8, 19), g.time, dt.UTC).timestamp()
        expected = run.sample(ts)
        assert haversine_m(g.lat, g.lon, expected.lat, expected.lon) < 1.0
    assert rmcs[0].date == dt.date(2024, 8, 19)
    assert sim.emitted  # every burst with a fix has its write time for latency figures


async def test_dead_zone_has_no_fix_while_the_shuttle_keeps_driving() -> None:
    run = ShuttleRun(PLAN, lead_s=0, dead_zone_m=(0.0, 60.0))
    async with ShuttleSimulator(run, time_factor=50) as sim:
        items = await read_items(sim.path, 30)
    fixes = [g.has_fix for g in items if isinstance(g, GGA)]
    assert fixes[0] is False and fixes[-1] is True
    assert fixes == sorted(fixes)  # lost at the start, regained once past 60 m
