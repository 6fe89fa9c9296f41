"""An HLK-LD2410 presence radar that lives on a pseudo-terminal.

`LD2410Simulator` owns a pty pair and hands out the slave path (open it like
/dev/ttyUSB0 at 256000 baud). It streams report frames at a configurable rate,
answers the configuration commands with the ACK bytes the datasheet specifies,
keeps the parameters it was configured with, switches to engineering reports on
request, and can inject line faults. Tests script the scene with `set_target`.

The pty plumbing is `simulators.pty.PtyDevice`: everything runs on the asyncio
loop (`loop.add_reader` on the master fd, `call_later` timers); no threads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from firmware_bridge.ld2410 import (
    GATE_CM,
    MAX_GATE,
    Ack,
    CloseEngineering,
    Command,
    ConfigurationInfo,
    EnableConfiguration,
    EnableEngineering,
    EndConfiguration,
    Engineering,
    FactoryReset,
    FirmwareVersion,
    FrameDecoder,
    Parameters,
    ReadFirmwareVersion,
    ReadParameters,
    Rejected,
    Report,
    Restart,
    SetGateSensitivity,
    SetMaxGates,
    TargetState,
    command_word,
    encode_ack,
    encode_report,
)
from simulators.pty import PtyDevice

# A real UART keeps shifting bits out whether or not anyone listens; the pty
# instead fills up. Beyond this backlog the simulator drops bytes like a UART.
DEFAULT_FIRMWARE = FirmwareVersion(0x0100, 0x0204, 0x23022511)
# Factory defaults from the datasheet's parameter table.
DEFAULT_MOVING_SENSITIVITY = (50, 50, 40, 30, 20, 15, 15, 15, 15)
DEFAULT_STATIC_SENSITIVITY = (0, 0, 40, 40, 30, 30, 20, 20, 20)
PROTOCOL_VERSION = 1
BUFFER_SIZE = 0x40
RESTART_DELAY_S = 0.05


@dataclass
class Fault:
    """Line faults to inject.

    garbage_before_next: raw bytes written just before the next report.
    corrupt_next: break the footer of the next N reports (the host sees bad_footer).
    truncate_next: cut the next N reports in half (the next frame must still decode).
    ignore_commands: do not answer commands at all (a radar that is wedged or
    on another baud rate).
    """

    garbage_before_next: bytes = b""
    corrupt_next: int = 0
    truncate_next: int = 0
    ignore_commands: bool = False


@dataclass
class Target:
    state: TargetState = TargetState.NONE
    moving_cm: int = 0
    moving_energy: int = 0
    still_cm: int = 0
    still_energy: int = 0


@dataclass
class RadarState:
    """What the radar keeps in its flash and RAM."""

    max_moving_gate: int = MAX_GATE
    max_static_gate: int = MAX_GATE
    unmanned_s: int = 5
    moving_sensitivity: list[int] = field(default_factory=lambda: [*DEFAULT_MOVING_SENSITIVITY])
    static_sensitivity: list[int] = field(default_factory=lambda: [*DEFAULT_STATIC_SENSITIVITY])
    config_mode: bool = False
    engineering: bool = False

    def parameters(self) -> Parameters:
        return Parameters(
            MAX_GATE,
            self.max_moving_gate,
            self.max_static_gate,
            tuple(self.moving_sensitivity),
            tuple(self.static_sensitivity),
            self.unmanned_s,
        )


class LD2410Simulator(PtyDevice):
    """One simulated radar on a fresh pty. Use as `async with LD2410Simulator() as radar`."""

    def __init__(
        self,
        *,
        report_hz: float = 10.0,
        firmware: FirmwareVersion = DEFAULT_FIRMWARE,
        fault: Fault | None = None,
    ) -> None:
        super().__init__()
        self.report_hz = report_hz
        self.firmware = firmware
        self.fault = fault or Fault()
        self.state = RadarState()
        self.target = Target()
        self.commands: list[Command] = []
        """Commands received and obeyed, in order."""
        self.reports_sent = 0
        self._decoder = FrameDecoder()
        self._report_timer: asyncio.TimerHandle | None = None
        self._restart_timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> LD2410Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def rx_rejected(self) -> int:
        """Frames the radar could not decode (what the host wrote that was not a command)."""
        return self._decoder.stats.rejected

    # -- scene ------------------------------------------------------------------

    def set_target(
        self,
        state: TargetState | int,
        moving_cm: int = 0,
        moving_energy: int = 0,
        still_cm: int = 0,
        still_energy: int = 0,
    ) -> None:
        """What the radar sees from now on (distances in cm, energies 0..100)."""
        self.target = Target(TargetState(state), moving_cm, moving_energy, still_cm, still_energy)

    def inject_raw(self, data: bytes) -> None:
        """Write raw bytes on the line (noise, hand-made frames)."""
        self._write(data)

    def current_report(self) -> Report:
        t = self.target
        moving = t.state.moving
        still = t.state.stationary
        moving_cm = t.moving_cm if moving else 0
        still_cm = t.still_cm if still else 0
        engineering = None
        if self.state.engineering:
            engineering = Engineering(
                MAX_GATE,
                MAX_GATE,
                _gate_energies(moving_cm, t.moving_energy if moving else 0),
                _gate_energies(still_cm, t.still_energy if still else 0),
            )
        return Report(
            t.state,
            moving_cm,
            t.moving_energy if moving else 0,
            still_cm,
            t.still_energy if still else 0,
            max(moving_cm, still_cm),
            engineering,
        )

    # -- internals --------------------------------------------------------------------

    def _started(self) -> None:
        self._schedule_report()

    def _stopped(self) -> None:
        for timer in (self._report_timer, self._restart_timer):
            if timer is not None:
                timer.cancel()

    def _schedule_report(self) -> None:
        if self.report_hz > 0 and not self._closed:
            assert self._loop is not None
            self._report_timer = self._loop.call_later(1 / self.report_hz, self._report)

    def _report(self) -> None:
        if self._closed:
            return
        # The radar stays silent while it is being configured.
        if not self.state.config_mode:
            self._send_report(encode_report(self.current_report()))
        self._schedule_report()

    def _send_report(self, wire: bytes) -> None:
        fault = self.fault
        if fault.garbage_before_next:
            garbage, fault.garbage_before_next = fault.garbage_before_next, b""
            self._write(garbage)
        if fault.corrupt_next > 0:
            fault.corrupt_next -= 1
            wire = wire[:-1] + bytes((wire[-1] ^ 0xFF,))
        elif fault.truncate_next > 0:
            fault.truncate_next -= 1
            wire = wire[: len(wire) // 2]
        self._write(wire)
        self.reports_sent += 1

    def _on_bytes(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, Rejected | Report | Ack):
                continue
            if self.fault.ignore_commands:
                continue
            reply = self._obey(item)
            if reply is not None:
                self._write(encode_ack(reply))

    def _obey(self, command: Command) -> Ack | None:
        word = command_word(command)
        st = self.state
        if isinstance(command, EnableConfiguration):
            st.config_mode = True
            self.commands.append(command)
            return Ack(word, 0, ConfigurationInfo(PROTOCOL_VERSION, BUFFER_SIZE))
        if not st.config_mode:
            # The datasheet: commands other than enable-configuration are only
            # valid in configuration mode; outside it the radar ignores them.
            return None
        self.commands.append(command)
        match command:
            case EndConfiguration():
                st.config_mode = False
            case SetMaxGates():
                if not (1 <= command.max_moving_gate and 1 <= command.max_static_gate):
                    return Ack(word, 1)
                st.max_moving_gate = command.max_moving_gate
                st.max_static_gate = command.max_static_gate
                st.unmanned_s = command.unmanned_s
            case ReadParameters():
                return Ack(word, 0, st.parameters())
            case EnableEngineering():
                st.engineering = True
            case CloseEngineering():
                st.engineering = False
            case SetGateSensitivity():
                gates = range(MAX_GATE + 1) if command.gate == 0xFFFF else (command.gate,)
                for gate in gates:
                    st.moving_sensitivity[gate] = command.moving
                    st.static_sensitivity[gate] = command.static
            case ReadFirmwareVersion():
                return Ack(word, 0, self.firmware)
            case FactoryReset():
                fresh = RadarState(config_mode=True, engineering=st.engineering)
                self.state = fresh
            case Restart():
                assert self._loop is not None
                self._restart_timer = self._loop.call_later(RESTART_DELAY_S, self._restarted)
        return Ack(word, 0)

    def _restarted(self) -> None:
        # A restart ends configuration and engineering mode; parameters survive.
        self.state.config_mode = False
        self.state.engineering = False
        self._decoder.reset()


def _gate_energies(distance_cm: int, energy: int) -> tuple[int, ...]:
    # The target's energy in its own gate, a little spill into the neighbours.
    if energy == 0:
        return (0,) * (MAX_GATE + 1)
    gate = min(distance_cm // GATE_CM, MAX_GATE)
    return tuple(
        energy if g == gate else energy // 3 if abs(g - gate) == 1 else 0
        for g in range(MAX_GATE + 1)
    )
