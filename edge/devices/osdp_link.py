"""The OSDP side of a door bus: what readers are told, and the serial port libosdp talks over.

`grant_commands` / `deny_commands` are the reader commands for a decision
(strike, LED, buzzer); `badge_ref` turns a card-read event into a contract
badge ref; `SerialChannel` lends libosdp a pyserial port and reports its loss
as `PortLost` instead of raising into C code; `restart_pd` makes libosdp retry
a silent reader now. The controller (edge/devices/door.py) decides and audits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial
from osdp import Channel, Command, CommandLEDColor, ControlPanel

# --- what the reader is told ----------------------------------------------------------------


def grant_commands(open_ms: int) -> list[dict[str, Any]]:
    """Strike on for open_ms (control code 5: temporary on, then back), LED green, one beep."""
    ticks = max(1, min(255, open_ms // 100))  # OSDP timers count 100 ms
    return [
        {"command": Command.Output, "output_no": 0, "control_code": 5, "timer_count": ticks},
        {
            "command": Command.LED,
            "reader": 0,
            "led_number": 0,
            "temporary": True,
            "control_code": 2,
            "on_color": CommandLEDColor.Green,
            "off_color": CommandLEDColor.Black,
            "on_count": ticks,
            "off_count": 0,
            "timer_count": ticks,
        },
        {
            "command": Command.Buzzer,
            "reader": 0,
            "control_code": 2,
            "on_count": 1,
            "off_count": 1,
            "rep_count": 1,
        },
    ]


def deny_commands() -> list[dict[str, Any]]:
    """LED blinking red for 2 s, two short beeps; the strike is not touched."""
    return [
        {
            "command": Command.LED,
            "reader": 0,
            "led_number": 0,
            "temporary": True,
            "control_code": 2,
            "on_color": CommandLEDColor.Red,
            "off_color": CommandLEDColor.Black,
            "on_count": 2,
            "off_count": 2,
            "timer_count": 20,
        },
        {
            "command": Command.Buzzer,
            "reader": 0,
            "control_code": 2,
            "on_count": 1,
            "off_count": 1,
            "rep_count": 2,
        },
    ]


def badge_ref(event: dict[str, Any]) -> str | None:
    """The contract badge ref of a card-read event, or None for unrepresentable card data."""
    data = bytes(event.get("data") or b"")
    if 4 <= len(data) <= 10:
        return data.hex().upper()
    return None


# --- serial channel -------------------------------------------------------------------------


class SerialChannel(Channel):  # type: ignore[misc]  # libosdp ships no type hints
    """pyserial port as a libosdp channel (non-blocking), reporting the port's loss once.

    These methods run inside libosdp's C refresh call: an exception escaping
    them leaves a Python error set under C code and wedges the binding. So any
    failure (pyserial raises SerialException, OSError and also termios.error,
    which is none of those) counts as "port lost" and is reported, never raised.
    """

    def __init__(self, port: serial.SerialBase, on_lost: Callable[[str], None]) -> None:
        super().__init__()
        self.port = port
        self._on_lost = on_lost
        self._lost = False

    def _fail(self, exc: BaseException) -> None:
        if not self._lost:
            self._lost = True
            self._on_lost(str(exc) or type(exc).__name__)

    def read(self, max_bytes: int) -> bytes:
        if self._lost:
            return b""
        try:
            return bytes(self.port.read(max_bytes))
        except Exception as exc:  # any failure = port lost (class docstring)
            self._fail(exc)
            return b""

    def write(self, buf: bytes) -> int:
        if self._lost:
            return 0
        try:
            return int(self.port.write(buf) or 0)
        except Exception as exc:  # any failure = port lost (class docstring)
            self._fail(exc)
            return 0

    def flush(self) -> None:
        if self._lost:
            return
        try:
            self.port.reset_input_buffer()
        except Exception as exc:  # any failure = port lost (class docstring)
            self._fail(exc)


@dataclass(frozen=True, slots=True)
class PortLost:
    reason: str


def restart_pd(cp: ControlPanel, address: int) -> None:
    """Restarts libosdp's state machine for one PD so it retries now (worker thread)."""
    cp.disable_pd(address)
    deadline = time.monotonic() + 2.0
    # disable_pd takes effect on the next refresh cycle; enable_pd fails before that.
    while cp.is_pd_enabled(address) and time.monotonic() < deadline:
        time.sleep(0.02)
    cp.enable_pd(address)
