"""Discovery: probing ptys with each simulator identifies the device that answers."""

from __future__ import annotations

import os
import tty

from edge.discovery import (
    NOTHING,
    DeviceReport,
    ProbeResult,
    SerialPortInfo,
    devices_report,
    format_report,
    list_serial_ports,
    probe,
)
from simulators.deskunit import DeskUnitSimulator
from simulators.gps import GpsSimulator
from simulators.ld2410 import LD2410Simulator
from tests.helpers import eventually

# Generous: a probe returns as soon as the device answers; only silent ports wait it out.
TIMEOUT = 1.5


async def test_probe_identifies_a_desk_unit() -> None:
    async with DeskUnitSimulator("RU-DU-000042", heartbeat_s=0) as unit:
        result = await probe(unit.path, TIMEOUT)
    assert (result.kind, result.baudrate) == ("deskunit", 115200)
    assert "RU-DU-000042" in result.detail and "1.4.2" in result.detail


async def test_probe_identifies_an_ld2410_and_leaves_it_out_of_configuration_mode() -> None:
    async with LD2410Simulator(report_hz=20) as radar:
        result = await probe(radar.path, TIMEOUT)
        assert (result.kind, result.baudrate) == ("ld2410", 256000)
        assert "V2.04.23022511" in result.detail

        # The probe writes EndConfiguration and returns without waiting for the
        # simulator to read it, so the radar leaves configuration mode shortly after.
        async def left_config_mode() -> bool:
            return not radar.state.config_mode

        await eventually(left_config_mode, what="radar out of configuration mode")


async def test_probe_identifies_a_radar_that_only_reports() -> None:
    async with LD2410Simulator(report_hz=50) as radar:
        radar.fault.ignore_commands = True
        result = await probe(radar.path, TIMEOUT)
    assert result.kind == "ld2410" and "reporting" in result.detail


async def test_probe_identifies_an_nmea_gps() -> None:
    async with GpsSimulator(time_factor=20) as gps:
        result = await probe(gps.path, TIMEOUT)
    assert (result.kind, result.baudrate) == ("gps", 9600)
    assert "NMEA GPS" in result.detail


async def test_empty_pty_is_nothing_answered() -> None:
    master, slave = os.openpty()
    try:
        tty.setraw(master)
        tty.setraw(slave)
        result = await probe(os.ttyname(slave), TIMEOUT)
    finally:
        os.close(master)
        os.close(slave)
    assert result.kind is None and result.detail == NOTHING


async def test_missing_port_reports_cannot_open() -> None:
    result = await probe("/dev/does-not-exist-ruang", TIMEOUT)
    assert result.kind is None and result.detail.startswith("cannot open")


async def test_devices_report_includes_extra_ports_and_their_probe() -> None:
    async with LD2410Simulator(report_hz=20) as radar:
        rows = await devices_report([radar.path], probe_ports=False)
        assert any(r.port.device == radar.path and r.probe is None for r in rows)
        assert radar.path not in {p.device for p in list_serial_ports()}
        # Only the pty: the test must not write to the machine's real serial ports.
        rows = await devices_report(
            [radar.path], probe_ports=True, timeout=TIMEOUT, system_ports=False
        )
        assert [r.port.device for r in rows] == [radar.path]
        probed = rows
        assert probed[0].probe is not None and probed[0].probe.kind == "ld2410"


def test_format_report_prints_one_aligned_line_per_port() -> None:
    rows = [
        DeviceReport(
            SerialPortInfo("/dev/ttyUSB0", "CP2102 USB to UART", "10c4:ea60", "0001", "1-1.2:1.0"),
            ProbeResult(
                "/dev/ttyUSB0", "ld2410", 256000, "HLK-LD2410 radar, firmware V2.04.23022511"
            ),
        ),
        DeviceReport(SerialPortInfo("/dev/pts/7"), ProbeResult("/dev/pts/7", None)),
    ]
    text = format_report(rows).splitlines()
    assert text[0].split() == ["PORT", "USB", "ID", "SERIAL", "LOCATION", "DESCRIPTION", "ANSWERS"]
    assert "10c4:ea60" in text[1] and text[1].endswith("V2.04.23022511")
    assert text[2].startswith("/dev/pts/7") and text[2].endswith(NOTHING)
    assert text[0].index("USB ID") == text[1].index("10c4:ea60")
    assert format_report([]) == "no serial ports found"
