"""GpsSimulator emits valid GGA/RMC/VTG for its route on a pty, with fault knobs."""

from __future__ import annotations

import pytest

from firmware_bridge.nmea import GGA, RMC, VTG, Item, LineDecoder, Rejected
from simulators.gps import IKN_ROUTE, GpsSimulator, bearing_deg, distance_m
from tests.simulators import raw_host


def RawHost(path: str) -> raw_host.RawHost[Item]:
    return raw_host.RawHost(path, LineDecoder())


def test_route_geometry_helpers() -> None:
    assert distance_m((-0.97, 116.70), (-0.97, 116.71)) == pytest.approx(1111.9, abs=1)
    assert bearing_deg((-0.97, 116.70), (-0.97, 116.71)) == pytest.approx(90, abs=0.01)
    assert bearing_deg((-0.97, 116.70), (-0.96, 116.70)) == pytest.approx(0, abs=0.01)


async def test_emits_gga_rmc_vtg_each_simulated_second_along_the_route() -> None:
    async with GpsSimulator(IKN_ROUTE, speed_kmh=72, time_factor=100) as gps:
        host = RawHost(gps.path)
        try:
            items = await host.take(9)
            assert [type(i) for i in items] == [GGA, RMC, VTG] * 3
            ggas = [i for i in items if isinstance(i, GGA)]
            rmcs = [i for i in items if isinstance(i, RMC)]
            assert all(g.has_fix and g.talker == "GN" for g in ggas)
            assert [g.time.second for g in ggas if g.time] == [1, 2, 3]
            assert all(
                abs(g.lat + 0.97) < 0.01 and abs(g.lon - 116.70) < 0.01
                for g in ggas
                if g.lat and g.lon
            )
            # 72 km/h = 20 m/s eastward along the first leg.
            assert rmcs[0].speed_kmh == pytest.approx(72, abs=0.01)
            assert ggas[0].lon is not None and ggas[1].lon is not None
            step = distance_m((-0.97, ggas[0].lon), (-0.97, ggas[1].lon))
            assert step == pytest.approx(20, abs=0.1)
            assert host.decoder.stats.rejected == 0
        finally:
            host.close()


async def test_lost_fix_period_then_recovery() -> None:
    async with GpsSimulator(time_factor=100) as gps:
        host = RawHost(gps.path)
        try:
            gps.lose_fix(seconds=2)
            items = await host.take(12)
            fixes = [i.has_fix for i in items if isinstance(i, GGA)]
            assert fixes == [False, False, True, True]
            assert any(isinstance(i, RMC) and not i.valid for i in items)
        finally:
            host.close()


async def test_bad_checksum_knob_spoils_exactly_n_sentences() -> None:
    async with GpsSimulator(time_factor=100) as gps:
        host = RawHost(gps.path)
        try:
            await host.take(3)
            gps.fault.bad_checksum_next = 2
            items = await host.take(6)
            assert [i.reason for i in items if isinstance(i, Rejected)] == ["bad_checksum"] * 2
        finally:
            host.close()
