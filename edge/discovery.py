"""Which serial devices are attached, and what answers on them: a technician's tool.

`list_serial_ports()` lists the ports the OS knows (USB ids, serial numbers,
physical location), `probe(port)` asks a port in each language Ruang speaks
(desk unit, HLK-LD2410 radar, NMEA GPS) and reports the first that answers,
`devices_report()` combines both, and `format_report()` prints them as a table
for `ruang edge devices [--probe] [PORT...]`.

Probing writes to the port: a desk-unit RequestHello and the radar's
enable/end-configuration pair. Both are harmless to every device we know, but
do not probe a port some other program is using.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Literal

import serial_asyncio_fast
from serial.tools import list_ports

from firmware_bridge import deskunit, ld2410, nmea

DeviceKind = Literal["deskunit", "ld2410", "gps"]
NOTHING = "nothing answered"
DESKUNIT_BAUD = 115200
GPS_BAUDS = (9600, 4800)


@dataclass(frozen=True, slots=True)
class SerialPortInfo:
    device: str
    description: str | None = None
    usb_id: str | None = None
    """"VID:PID" in hex, e.g. "1a86:7523" (CH340), for USB adapters."""
    serial_number: str | None = None
    location: str | None = None
    """USB topology (bus-port.port:config.interface); stable for one physical socket."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    port: str
    kind: DeviceKind | None
    baudrate: int | None = None
    detail: str = NOTHING


@dataclass(frozen=True, slots=True)
class DeviceReport:
    port: SerialPortInfo
    probe: ProbeResult | None = None


def list_serial_ports() -> list[SerialPortInfo]:
    """Serial ports the OS lists, sorted by device path."""
    out = []
    for info in list_ports.comports():
        usb_id = None
        if info.vid is not None and info.pid is not None:
            usb_id = f"{info.vid:04x}:{info.pid:04x}"
        description = info.description if info.description not in (None, "n/a") else None
        out.append(
            SerialPortInfo(
                device=info.device,
                description=description,
                usb_id=usb_id,
                serial_number=info.serial_number,
                location=info.location,
            )
        )
    return sorted(out, key=lambda p: p.device)


async def _exchange(
    port: str,
    baudrate: int,
    hello: bytes,
    timeout: float,  # noqa: ASYNC109 - each protocol gets its own bounded wait
    answered: _Matcher,
) -> str | None:
    """Open, write `hello`, read until `answered` returns a detail or `timeout` passes."""
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=port, baudrate=baudrate)
    try:
        if hello:
            writer.write(hello)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    data = await reader.read(4096)
                    if not data:
                        return None
                    detail = answered.feed(data, writer)
                    if detail is not None:
                        # Give follow-up writes (end configuration) time to leave.
                        await writer.drain()
                        return detail
        except TimeoutError:
            return None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class _Matcher:
    def feed(self, data: bytes, writer: asyncio.StreamWriter) -> str | None:
        raise NotImplementedError


class _DeskUnit(_Matcher):
    def __init__(self) -> None:
        self.decoder = deskunit.FrameDecoder()

    def feed(self, data: bytes, writer: asyncio.StreamWriter) -> str | None:
        for item in self.decoder.feed(data):
            if isinstance(item, deskunit.Frame) and isinstance(item.message, deskunit.Hello):
                hello = item.message
                # Acknowledge, as the link layer would, so the unit stops retrying.
                writer.write(deskunit.encode_frame(0, deskunit.Ack(item.seq)))
                firmware = ".".join(str(p) for p in hello.firmware)
                return f"desk unit {hello.serial}, firmware {firmware}"
        return None


class _Radar(_Matcher):
    def __init__(self) -> None:
        self.decoder = ld2410.FrameDecoder()
        self.configuring = False

    def feed(self, data: bytes, writer: asyncio.StreamWriter) -> str | None:
        for item in self.decoder.feed(data):
            if isinstance(item, ld2410.Ack):
                if item.command == ld2410.CommandWord.ENABLE_CONFIGURATION:
                    self.configuring = True
                    writer.write(ld2410.encode_command(ld2410.ReadFirmwareVersion()))
                elif isinstance(item.info, ld2410.FirmwareVersion):
                    # Leave configuration mode, or the radar stays silent.
                    writer.write(ld2410.encode_command(ld2410.EndConfiguration()))
                    return f"HLK-LD2410 radar, firmware {item.info}"
            elif isinstance(item, ld2410.Report) and not self.configuring:
                return "HLK-LD2410 radar (reporting; did not answer configuration)"
        return None


class _Gps(_Matcher):
    def __init__(self) -> None:
        self.decoder = nmea.LineDecoder()

    def feed(self, data: bytes, writer: asyncio.StreamWriter) -> str | None:
        for item in self.decoder.feed(data):
            if isinstance(item, nmea.GGA | nmea.RMC):
                state = "fix" if item.has_fix else "no fix"
                return f"NMEA GPS (talker {item.talker}, {state})"
        return None


async def probe(port: str, timeout: float = 1.0) -> ProbeResult:  # noqa: ASYNC109
    """Identify what answers on `port`; each protocol gets up to `timeout` seconds."""
    attempts: list[tuple[DeviceKind, int, bytes, _Matcher]] = [
        (
            "deskunit",
            DESKUNIT_BAUD,
            b"\x00" + deskunit.encode_frame(0, deskunit.RequestHello()),
            _DeskUnit(),
        ),
        (
            "ld2410",
            ld2410.DEFAULT_BAUDRATE,
            ld2410.encode_command(ld2410.EnableConfiguration()),
            _Radar(),
        ),
    ]
    attempts += [("gps", baud, b"", _Gps()) for baud in GPS_BAUDS]
    for kind, baudrate, hello, matcher in attempts:
        try:
            detail = await _exchange(port, baudrate, hello, timeout, matcher)
        except (OSError, ValueError) as exc:
            return ProbeResult(port, None, None, f"cannot open: {exc}")
        if detail is not None:
            return ProbeResult(port, kind, baudrate, detail)
    return ProbeResult(port, None)


async def devices_report(
    extra_ports: list[str],
    *,
    probe_ports: bool = False,
    timeout: float = 1.0,  # noqa: ASYNC109
    system_ports: bool = True,
) -> list[DeviceReport]:
    """Listed ports plus `extra_ports` (ptys, symlinks), optionally probed one by one.

    system_ports=False skips the OS listing (only `extra_ports`), so a probe of
    named ports never writes to anything else.
    """
    ports = list_serial_ports() if system_ports else []
    known = {p.device for p in ports}
    ports += [SerialPortInfo(device=path) for path in extra_ports if path not in known]
    out = []
    for info in ports:
        # One at a time: probing two ports of one USB hub in parallel is fine,
        # but a technician reading the output wants it in order.
        result = await probe(info.device, timeout) if probe_ports else None
        out.append(DeviceReport(info, result))
    return out


def format_report(rows: list[DeviceReport]) -> str:
    """A plain-text table, one line per port."""
    if not rows:
        return "no serial ports found"
    probed = any(row.probe is not None for row in rows)
    header = ["PORT", "USB ID", "SERIAL", "LOCATION", "DESCRIPTION"]
    if probed:
        header.append("ANSWERS")
    table = [header]
    for row in rows:
        p = row.port
        cells = [
            p.device,
            p.usb_id or "-",
            p.serial_number or "-",
            p.location or "-",
            p.description or "-",
        ]
        if probed:
            cells.append(row.probe.detail if row.probe is not None else "-")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    return "\n".join(lines)
