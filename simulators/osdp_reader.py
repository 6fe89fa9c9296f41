"""A scriptable OSDP card reader (libosdp PeripheralDevice) behind a pseudo-terminal.

`OsdpReaderSim` starts ``socat`` to make a linked pty pair: the reader uses
one end, and `cp_port` (a stable symlink path) is what a Control Panel opens
as if it were a USB-RS485 adapter. Scripting:

- `present_card(uid)` / `present_wiegand(bits, value)`: a card read event,
- `set_tamper(on)`, `power_fail()`, `power_restored()`: local status reports,
- `power_off()` / `power_on()`: the reader stops/starts answering while the bus
  (pty) stays up, like a reader losing its 12 V supply,
- `commands`: every LED/buzzer/output command the reader received, in order.

`stop()` stops the libosdp thread, ends socat (the CP sees its port vanish)
and removes the links; nothing is left running.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import serial
from osdp import (
    Capability,
    CardFormat,
    Channel,
    Event,
    LogLevel,
    PDCapabilities,
    PDInfo,
    PeripheralDevice,
    StatusReportType,
)

DEFAULT_ADDRESS = 101


class _PtyChannel(Channel):  # type: ignore[misc]  # libosdp ships no type hints
    """The reader's end of the pty, non-blocking, as libosdp's refresh thread expects."""

    def __init__(self, port: serial.Serial) -> None:
        super().__init__()
        self.port = port

    def read(self, max_bytes: int) -> bytes:
        try:
            return bytes(self.port.read(max_bytes))
        except Exception:  # nothing may escape into libosdp
            # The CP end went away (socat stopping); libosdp just sees silence.
            return b""

    def write(self, buf: bytes) -> int:
        try:
            return int(self.port.write(buf) or 0)
        except Exception:  # nothing may escape into libosdp
            return 0

    def flush(self) -> None:
        try:
            self.port.reset_input_buffer()
        except Exception:  # nothing may escape into libosdp
            pass


class OsdpReaderSim:
    def __init__(
        self,
        scbk: bytes,
        *,
        address: int = DEFAULT_ADDRESS,
        cp_port: Path | str | None = None,
        baudrate: int = 9600,
    ) -> None:
        self.scbk = scbk
        self.address = address
        self.baudrate = baudrate
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if cp_port is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="osdp-sim-")
            cp_port = Path(self._tmp.name) / "cp"
        self.cp_port = Path(cp_port)
        self._pd_port = self.cp_port.with_name(self.cp_port.name + ".pd")
        self._socat: subprocess.Popen[bytes] | None = None
        self._serial: serial.Serial | None = None
        self._pd: PeripheralDevice | None = None
        self._lock = threading.Lock()
        self.commands: list[dict[str, Any]] = []
        self._tamper = False
        self._power_fail = False

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Path:
        """Creates the pty pair and starts the reader; returns the CP-side port path."""
        for link in (self.cp_port, self._pd_port):
            link.unlink(missing_ok=True)
        self._socat = subprocess.Popen(
            [
                "socat",
                f"pty,raw,echo=0,link={self.cp_port}",
                f"pty,raw,echo=0,link={self._pd_port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not (self.cp_port.exists() and self._pd_port.exists()):
            if self._socat.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.005)
        self._serial = serial.Serial(str(self._pd_port), self.baudrate, timeout=0)
        self.power_on()
        return self.cp_port

    def power_on(self) -> None:
        """Starts the reader's OSDP stack (it answers polls again)."""
        if self._pd is not None:
            return
        assert self._serial is not None, "start() first"
        info = PDInfo(self.address, _PtyChannel(self._serial), scbk=self.scbk, name="sim-reader")
        caps = PDCapabilities(
            [
                (Capability.OutputControl, 1, 1),
                (Capability.LEDControl, 1, 1),
                (Capability.AudibleControl, 1, 1),
                (Capability.CommunicationSecurity, 1, 1),
            ]
        )
        pd = PeripheralDevice(
            info, caps, log_level=LogLevel.Error, command_handler=self._on_command
        )
        pd.start()
        self._pd = pd

    def power_off(self) -> None:
        """Stops answering (the pty stays, as a bus whose reader lost power)."""
        pd, self._pd = self._pd, None
        if pd is not None:
            pd.stop()
            # Drop the libosdp context now rather than at garbage collection.
            pd.ctx = None

    def stop(self) -> None:
        self.power_off()
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        if self._socat is not None:
            self._socat.terminate()
            try:
                self._socat.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._socat.kill()
                self._socat.wait()
            self._socat = None
        for link in (self.cp_port, self._pd_port):
            link.unlink(missing_ok=True)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> OsdpReaderSim:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- state --------------------------------------------------------------------------------

    @property
    def socat_pid(self) -> int | None:
        return self._socat.pid if self._socat is not None else None

    @property
    def running(self) -> bool:
        return self._pd is not None

    def is_secure(self) -> bool:
        return self._pd is not None and bool(self._pd.is_sc_active())

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.commands)

    def clear_commands(self) -> None:
        with self._lock:
            self.commands.clear()

    def _on_command(self, command: dict[str, Any]) -> tuple[int, None]:
        # Runs on libosdp's thread; the list is read by tests on another one.
        with self._lock:
            self.commands.append(dict(command))
        return 0, None

    # --- scripting ----------------------------------------------------------------------------

    def _submit(self, event: dict[str, Any]) -> None:
        if self._pd is None:
            raise RuntimeError("the reader is powered off")
        if not self._pd.submit_event(event):
            raise RuntimeError(f"libosdp refused the event {event}")

    def present_card(self, uid: bytes) -> None:
        """A card with this UID is held to the reader (raw, byte-aligned card data)."""
        self._submit(
            {
                "event": Event.CardRead,
                "reader_no": 0,
                "format": CardFormat.Unspecified,
                "direction": 0,
                "length": len(uid) * 8,
                "data": bytes(uid),
            }
        )

    def present_wiegand(self, bits: int, value: int) -> None:
        """A Wiegand card: `value` as `bits` bits, sent MSB first and left-aligned in bytes."""
        nbytes = (bits + 7) // 8
        data = (value << (nbytes * 8 - bits)).to_bytes(nbytes, "big")
        self._submit(
            {
                "event": Event.CardRead,
                "reader_no": 0,
                "format": CardFormat.Wiegand,
                "direction": 0,
                "length": bits,
                "data": data,
            }
        )

    def _report_local(self) -> None:
        # OSDP local status: byte 0 tamper, byte 1 power (non-zero = alarm).
        report = bytes([int(self._tamper), int(self._power_fail)])
        self._submit(
            {
                "event": Event.Status,
                "type": StatusReportType.Local,
                "nr_entries": 2,
                "report": report,
            }
        )

    def set_tamper(self, on: bool) -> None:
        self._tamper = on
        self._report_local()

    def power_fail(self) -> None:
        self._power_fail = True
        self._report_local()

    def power_restored(self) -> None:
        self._power_fail = False
        self._report_local()
