"""Sans-io codec of the HLK-LD2410 24 GHz presence radar's UART protocol.

The radar speaks two frame families on one line (256000 baud, 8N1 by default):
report frames (`F4 F3 F2 F1` ... `F8 F7 F6 F5`) that it streams by itself, and
command/ACK frames (`FD FC FB FA` ... `04 03 02 01`) exchanged while the host
configures it. `encode_command`, `encode_ack` and `encode_report` produce wire
bytes; `FrameDecoder.feed` turns any byte stream, however chunked or noisy, into
`Report`, `Ack`, `Command` and `Rejected` items. No I/O, no clock: the edge
driver, the simulator, the discovery probe, the tests and the benchmark share it.
See docs/devices/ld2410.md for the layouts and byte vectors.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum

from firmware_bridge.decoder_stats import RejectCounts

DEFAULT_BAUDRATE = 256000
REPORT_HEADER = b"\xf4\xf3\xf2\xf1"
REPORT_FOOTER = b"\xf8\xf7\xf6\xf5"
COMMAND_HEADER = b"\xfd\xfc\xfb\xfa"
COMMAND_FOOTER = b"\x04\x03\x02\x01"
REPORT_HEAD = 0xAA
REPORT_TAIL = 0x55
REPORT_CHECK = 0x00
ACK_FLAG = 0x0100
MAX_GATE = 8
"""Gates are 0.75 m wide; gate 8 ends at 6.75 m."""
GATE_CM = 75
ALL_GATES = 0xFFFF
MAX_DATA_LEN = 0x40
"""Largest in-frame data length accepted. The radar's own receive buffer is 0x40
bytes (it says so in the enable-configuration ACK), and its longest frame, the
engineering report with its extra bytes, stays well below that."""
MAX_FRAME_LEN = 4 + 2 + MAX_DATA_LEN + 4
PARAM_WORDS_MAX_GATES = (0x0000, 0x0001, 0x0002)
PARAM_WORDS_SENSITIVITY = (0x0000, 0x0001, 0x0002)

_HEADER_RE = re.compile(re.escape(REPORT_HEADER) + b"|" + re.escape(COMMAND_HEADER))


class CommandWord(IntEnum):
    """Command words the codec models (an ACK carries `word | 0x0100`)."""

    ENABLE_CONFIGURATION = 0x00FF
    END_CONFIGURATION = 0x00FE
    SET_MAX_GATES = 0x0060
    READ_PARAMETERS = 0x0061
    ENABLE_ENGINEERING = 0x0062
    CLOSE_ENGINEERING = 0x0063
    SET_GATE_SENSITIVITY = 0x0064
    READ_FIRMWARE_VERSION = 0x00A0
    FACTORY_RESET = 0x00A2
    RESTART = 0x00A3


class TargetState(IntEnum):
    NONE = 0
    MOVING = 1
    STATIONARY = 2
    BOTH = 3

    @property
    def moving(self) -> bool:
        return bool(self & TargetState.MOVING)

    @property
    def stationary(self) -> bool:
        return bool(self & TargetState.STATIONARY)


class ReportType(IntEnum):
    ENGINEERING = 0x01
    BASIC = 0x02


def _check(name: str, value: int, hi: int) -> None:
    if not 0 <= value <= hi:
        raise ValueError(f"{name} must be 0..{hi}, got {value}")


# --- reports -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Engineering:
    """Extra part of an engineering-mode report: energy per distance gate."""

    max_moving_gate: int
    max_static_gate: int
    moving_energies: tuple[int, ...]
    static_energies: tuple[int, ...]
    extra: bytes = b""
    """Bytes after the gate energies (newer firmware puts light level and OUT pin here)."""

    def __post_init__(self) -> None:
        _check("max_moving_gate", self.max_moving_gate, 0xFF)
        _check("max_static_gate", self.max_static_gate, 0xFF)
        if len(self.moving_energies) != self.max_moving_gate + 1:
            raise ValueError("moving_energies must have max_moving_gate + 1 entries")
        if len(self.static_energies) != self.max_static_gate + 1:
            raise ValueError("static_energies must have max_static_gate + 1 entries")
        for value in (*self.moving_energies, *self.static_energies):
            _check("gate energy", value, 0xFF)


@dataclass(frozen=True, slots=True)
class Report:
    """One target report; `engineering` is set for engineering-mode frames."""

    target: TargetState
    moving_cm: int
    moving_energy: int
    still_cm: int
    still_energy: int
    detection_cm: int
    engineering: Engineering | None = None

    def __post_init__(self) -> None:
        TargetState(self.target)
        for name in ("moving_cm", "still_cm", "detection_cm"):
            _check(name, getattr(self, name), 0xFFFF)
        for name in ("moving_energy", "still_energy"):
            _check(name, getattr(self, name), 0xFF)


def encode_report(report: Report) -> bytes:
    """Wire bytes of one report frame (the radar -> host direction)."""
    body = bytearray(
        struct.pack(
            "<BBBHBHBH",
            ReportType.ENGINEERING if report.engineering else ReportType.BASIC,
            REPORT_HEAD,
            int(report.target),
            report.moving_cm,
            report.moving_energy,
            report.still_cm,
            report.still_energy,
            report.detection_cm,
        )
    )
    eng = report.engineering
    if eng is not None:
        body += bytes((eng.max_moving_gate, eng.max_static_gate))
        body += bytes(eng.moving_energies) + bytes(eng.static_energies) + eng.extra
    body += bytes((REPORT_TAIL, REPORT_CHECK))
    return _frame(REPORT_HEADER, bytes(body), REPORT_FOOTER)


# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnableConfiguration:
    """Enter configuration mode; every other command is ignored outside it."""


@dataclass(frozen=True, slots=True)
class EndConfiguration:
    """Leave configuration mode; the radar resumes reporting."""


@dataclass(frozen=True, slots=True)
class SetMaxGates:
    """Farthest moving/static gate to detect in (1..8) and the no-one delay in seconds."""

    max_moving_gate: int
    max_static_gate: int
    unmanned_s: int

    def __post_init__(self) -> None:
        _check("max_moving_gate", self.max_moving_gate, MAX_GATE)
        _check("max_static_gate", self.max_static_gate, MAX_GATE)
        _check("unmanned_s", self.unmanned_s, 0xFFFF)


@dataclass(frozen=True, slots=True)
class ReadParameters:
    pass


@dataclass(frozen=True, slots=True)
class EnableEngineering:
    pass


@dataclass(frozen=True, slots=True)
class CloseEngineering:
    pass


@dataclass(frozen=True, slots=True)
class SetGateSensitivity:
    """Motion and static sensitivity (0..100) of one gate, or of all with ALL_GATES."""

    gate: int
    moving: int
    static: int

    def __post_init__(self) -> None:
        if self.gate != ALL_GATES:
            _check("gate", self.gate, MAX_GATE)
        _check("moving", self.moving, 100)
        _check("static", self.static, 100)


@dataclass(frozen=True, slots=True)
class ReadFirmwareVersion:
    pass


@dataclass(frozen=True, slots=True)
class FactoryReset:
    pass


@dataclass(frozen=True, slots=True)
class Restart:
    pass


Command = (
    EnableConfiguration
    | EndConfiguration
    | SetMaxGates
    | ReadParameters
    | EnableEngineering
    | CloseEngineering
    | SetGateSensitivity
    | ReadFirmwareVersion
    | FactoryReset
    | Restart
)

_COMMAND_WORDS: dict[type[Command], CommandWord] = {
    EnableConfiguration: CommandWord.ENABLE_CONFIGURATION,
    EndConfiguration: CommandWord.END_CONFIGURATION,
    SetMaxGates: CommandWord.SET_MAX_GATES,
    ReadParameters: CommandWord.READ_PARAMETERS,
    EnableEngineering: CommandWord.ENABLE_ENGINEERING,
    CloseEngineering: CommandWord.CLOSE_ENGINEERING,
    SetGateSensitivity: CommandWord.SET_GATE_SENSITIVITY,
    ReadFirmwareVersion: CommandWord.READ_FIRMWARE_VERSION,
    FactoryReset: CommandWord.FACTORY_RESET,
    Restart: CommandWord.RESTART,
}
_SIMPLE_COMMANDS: dict[CommandWord, Command] = {
    CommandWord.END_CONFIGURATION: EndConfiguration(),
    CommandWord.READ_PARAMETERS: ReadParameters(),
    CommandWord.ENABLE_ENGINEERING: EnableEngineering(),
    CommandWord.CLOSE_ENGINEERING: CloseEngineering(),
    CommandWord.READ_FIRMWARE_VERSION: ReadFirmwareVersion(),
    CommandWord.FACTORY_RESET: FactoryReset(),
    CommandWord.RESTART: Restart(),
}


def command_word(command: Command) -> CommandWord:
    return _COMMAND_WORDS[type(command)]


def _params(words: tuple[int, ...], values: tuple[int, ...]) -> bytes:
    # Parameter blocks are (u16 word, u32 value) pairs.
    return b"".join(struct.pack("<HI", w, v) for w, v in zip(words, values, strict=True))


def _command_value(command: Command) -> bytes:
    match command:
        case EnableConfiguration():
            return b"\x01\x00"
        case SetMaxGates():
            values = (command.max_moving_gate, command.max_static_gate, command.unmanned_s)
            return _params(PARAM_WORDS_MAX_GATES, values)
        case SetGateSensitivity():
            values = (command.gate, command.moving, command.static)
            return _params(PARAM_WORDS_SENSITIVITY, values)
    return b""


def encode_command(command: Command) -> bytes:
    """Wire bytes of one command frame (host -> radar)."""
    body = struct.pack("<H", command_word(command)) + _command_value(command)
    return _frame(COMMAND_HEADER, body, COMMAND_FOOTER)


# --- ACKs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigurationInfo:
    """Payload of the enable-configuration ACK."""

    protocol_version: int
    buffer_size: int

    def __post_init__(self) -> None:
        _check("protocol_version", self.protocol_version, 0xFFFF)
        _check("buffer_size", self.buffer_size, 0xFFFF)


@dataclass(frozen=True, slots=True)
class Parameters:
    """Payload of the read-parameters ACK: the radar's stored configuration."""

    max_gate: int
    max_moving_gate: int
    max_static_gate: int
    moving_sensitivity: tuple[int, ...]
    static_sensitivity: tuple[int, ...]
    unmanned_s: int

    def __post_init__(self) -> None:
        for name in ("max_gate", "max_moving_gate", "max_static_gate"):
            _check(name, getattr(self, name), 0xFF)
        if len(self.moving_sensitivity) != MAX_GATE + 1:
            raise ValueError("moving_sensitivity must have 9 entries (gates 0..8)")
        if len(self.static_sensitivity) != MAX_GATE + 1:
            raise ValueError("static_sensitivity must have 9 entries (gates 0..8)")
        for value in (*self.moving_sensitivity, *self.static_sensitivity):
            _check("sensitivity", value, 0xFF)
        _check("unmanned_s", self.unmanned_s, 0xFFFF)


@dataclass(frozen=True, slots=True)
class FirmwareVersion:
    """Payload of the read-firmware-version ACK."""

    firmware_type: int
    major: int
    minor: int

    def __post_init__(self) -> None:
        _check("firmware_type", self.firmware_type, 0xFFFF)
        _check("major", self.major, 0xFFFF)
        _check("minor", self.minor, 0xFFFFFFFF)

    def __str__(self) -> str:
        # The vendor renders major 0x0204 / minor 0x23022511 as "V2.04.23022511":
        # the high byte in decimal, the rest as the hex digits (a BCD build date).
        return f"V{self.major >> 8}.{self.major & 0xFF:02x}.{self.minor:08x}"


AckInfo = ConfigurationInfo | Parameters | FirmwareVersion


@dataclass(frozen=True, slots=True)
class Ack:
    """The radar's answer to a command: status 0 is success."""

    command: int
    """The command word answered (without the 0x0100 ACK flag)."""
    status: int = 0
    info: AckInfo | None = None
    extra: bytes = b""
    """Payload bytes the codec does not model (unknown commands, newer firmware)."""

    def __post_init__(self) -> None:
        _check("command", self.command, 0xFEFF)
        if self.command & ACK_FLAG:
            raise ValueError("command must not carry the ACK flag")
        _check("status", self.status, 0xFFFF)

    @property
    def ok(self) -> bool:
        return self.status == 0


def _ack_info(info: AckInfo | None) -> bytes:
    match info:
        case ConfigurationInfo():
            return struct.pack("<HH", info.protocol_version, info.buffer_size)
        case Parameters():
            return (
                bytes((REPORT_HEAD, info.max_gate, info.max_moving_gate, info.max_static_gate))
                + bytes(info.moving_sensitivity)
                + bytes(info.static_sensitivity)
                + struct.pack("<H", info.unmanned_s)
            )
        case FirmwareVersion():
            return struct.pack("<HHI", info.firmware_type, info.major, info.minor)
    return b""


def encode_ack(ack: Ack) -> bytes:
    """Wire bytes of one ACK frame (radar -> host)."""
    body = struct.pack("<HH", ack.command | ACK_FLAG, ack.status) + _ack_info(ack.info) + ack.extra
    return _frame(COMMAND_HEADER, body, COMMAND_FOOTER)


def _frame(header: bytes, body: bytes, footer: bytes) -> bytes:
    return header + struct.pack("<H", len(body)) + body + footer


# --- decoding ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejected:
    """Bytes that are not a valid frame.

    reason is one of REJECT_REASONS: "garbage" (bytes outside any frame),
    "bad_length" (declared length above MAX_DATA_LEN or not matching the
    content), "bad_footer", "bad_head"/"bad_tail" (report markers),
    "unknown_type" (report data type), "unknown_command", "bad_value".
    raw is the offending bytes, truncated to MAX_FRAME_LEN.
    """

    reason: str
    raw: bytes


REJECT_REASONS = (
    "garbage",
    "bad_length",
    "bad_footer",
    "bad_head",
    "bad_tail",
    "unknown_type",
    "unknown_command",
    "bad_value",
)

Item = Report | Ack | Command | Rejected


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_report(data: bytes) -> Report:
    if len(data) < 13:
        raise _Reject("bad_length")
    kind = data[0]
    if kind not in (ReportType.BASIC, ReportType.ENGINEERING):
        raise _Reject("unknown_type")
    if data[1] != REPORT_HEAD:
        raise _Reject("bad_head")
    if data[-2] != REPORT_TAIL or data[-1] != REPORT_CHECK:
        raise _Reject("bad_tail")
    state, mcm, men, scm, sen, dcm = struct.unpack_from("<BHBHBH", data, 2)
    if state > TargetState.BOTH:
        raise _Reject("bad_value")
    engineering = None
    if kind == ReportType.BASIC:
        if len(data) != 13:
            raise _Reject("bad_length")
    else:
        engineering = _parse_engineering(data[11:-2])
    return Report(TargetState(state), mcm, men, scm, sen, dcm, engineering)


def _parse_engineering(part: bytes) -> Engineering:
    if len(part) < 2:
        raise _Reject("bad_length")
    n_moving, n_static = part[0], part[1]
    end_moving = 2 + n_moving + 1
    end_static = end_moving + n_static + 1
    if len(part) < end_static:
        raise _Reject("bad_length")
    return Engineering(
        n_moving,
        n_static,
        tuple(part[2:end_moving]),
        tuple(part[end_moving:end_static]),
        bytes(part[end_static:]),
    )


def _parse_command(word: int, value: bytes) -> Command:
    try:
        kind = CommandWord(word)
    except ValueError:
        raise _Reject("unknown_command") from None
    if kind is CommandWord.ENABLE_CONFIGURATION:
        if value != b"\x01\x00":
            raise _Reject("bad_value")
        return EnableConfiguration()
    if kind in (CommandWord.SET_MAX_GATES, CommandWord.SET_GATE_SENSITIVITY):
        if len(value) != 18:
            raise _Reject("bad_length")
        pairs = [struct.unpack_from("<HI", value, i) for i in range(0, 18, 6)]
        words = tuple(w for w, _ in pairs)
        # The datasheet fixes the parameter order; anything else is a host bug.
        if words != PARAM_WORDS_MAX_GATES:
            raise _Reject("bad_value")
        a, b, c = (v for _, v in pairs)
        if kind is CommandWord.SET_MAX_GATES:
            return SetMaxGates(a, b, c)
        return SetGateSensitivity(a, b, c)
    if value:
        raise _Reject("bad_length")
    return _SIMPLE_COMMANDS[kind]


def _parse_ack(word: int, payload: bytes) -> Ack:
    if len(payload) < 2:
        raise _Reject("bad_length")
    status = struct.unpack_from("<H", payload)[0]
    rest = payload[2:]
    info: AckInfo | None = None
    # A failed command answers with the status alone, whatever it asked for.
    if status == 0:
        if word == CommandWord.ENABLE_CONFIGURATION and len(rest) >= 4:
            info = ConfigurationInfo(*struct.unpack_from("<HH", rest))
            rest = rest[4:]
        elif word == CommandWord.READ_FIRMWARE_VERSION and len(rest) >= 8:
            info = FirmwareVersion(*struct.unpack_from("<HHI", rest))
            rest = rest[8:]
        elif word == CommandWord.READ_PARAMETERS and len(rest) >= 24:
            if rest[0] != REPORT_HEAD:
                raise _Reject("bad_head")
            info = Parameters(
                rest[1],
                rest[2],
                rest[3],
                tuple(rest[4:13]),
                tuple(rest[13:22]),
                struct.unpack_from("<H", rest, 22)[0],
            )
            rest = rest[24:]
    return Ack(word, status, info, bytes(rest))


def decode_frame(frame: bytes) -> Item:
    """Parse one complete frame (header to footer, length already consistent)."""
    data = frame[6:-4]
    try:
        if frame.startswith(REPORT_HEADER):
            return _parse_report(data)
        if len(data) < 2:
            raise _Reject("bad_length")
        word = struct.unpack_from("<H", data)[0]
        if word & ACK_FLAG:
            return _parse_ack(word & ~ACK_FLAG, data[2:])
        return _parse_command(word, data[2:])
    except _Reject as exc:
        return Rejected(exc.reason, bytes(frame[:MAX_FRAME_LEN]))
    except ValueError:
        # Raised by the dataclass range checks.
        return Rejected("bad_value", bytes(frame[:MAX_FRAME_LEN]))


@dataclass
class DecoderStats(RejectCounts):
    """Running counts of a FrameDecoder: what it accepted, besides the rejects."""

    reports: int = 0
    acks: int = 0
    commands: int = 0


class FrameDecoder:
    """Incremental decoder of both frame families; never raises on input.

    Bytes before a header are reported once per run as "garbage". A frame whose
    length field is implausible or whose footer is wrong is rejected and the
    search for the next header restarts just after the bad header, so a
    frame cut short by a newer one is not allowed to swallow its successor.
    At most MAX_FRAME_LEN bytes are held between calls.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._garbage = bytearray()
        # Set after a bad frame was reported: the bytes up to the next header are
        # its remains, not a separate garbage run to count again.
        self._quiet = False
        self.stats = DecoderStats()

    def reset(self) -> None:
        """Forget any partial frame (e.g. after reopening the port)."""
        self._buf.clear()
        self._garbage.clear()
        self._quiet = False

    def _reject(self, item: Rejected, out: list[Item]) -> None:
        self.stats.reject(item.reason)
        out.append(item)

    def _skip(self, count: int) -> None:
        # Keep only a bounded sample of a garbage run; report the run once it ends.
        room = MAX_FRAME_LEN - len(self._garbage)
        if room > 0 and not self._quiet:
            self._garbage += self._buf[: min(count, room)]
        del self._buf[:count]

    def _end_garbage(self, out: list[Item]) -> None:
        if self._garbage:
            self._reject(Rejected("garbage", bytes(self._garbage)), out)
            self._garbage.clear()
        self._quiet = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Item]:
        out: list[Item] = []
        self._buf += data
        buf = self._buf
        while buf:
            match = _HEADER_RE.search(buf)
            if match is None:
                # Keep a possible partial header (3 bytes) for the next chunk.
                self._skip(max(0, len(buf) - 3))
                break
            if match.start():
                self._skip(match.start())
            if len(buf) < 6:
                break
            length = buf[4] | buf[5] << 8
            if length > MAX_DATA_LEN:
                self._end_garbage(out)
                self._reject(Rejected("bad_length", bytes(buf[:6])), out)
                # Headers cannot overlap one another, so the next one starts after these 4.
                del buf[:4]
                self._quiet = True
                continue
            total = 10 + length
            if len(buf) < total:
                break
            footer = REPORT_FOOTER if buf[0] == REPORT_HEADER[0] else COMMAND_FOOTER
            if buf[total - 4 : total] != footer:
                self._end_garbage(out)
                self._reject(Rejected("bad_footer", bytes(buf[:total])), out)
                # Rescan right after the header: a frame cut short by the next
                # one must not swallow it.
                del buf[:4]
                self._quiet = True
                continue
            self._end_garbage(out)
            item = decode_frame(bytes(buf[:total]))
            del buf[:total]
            if isinstance(item, Rejected):
                self._reject(item, out)
            elif isinstance(item, Report):
                self.stats.reports += 1
                out.append(item)
            elif isinstance(item, Ack):
                self.stats.acks += 1
                out.append(item)
            else:
                self.stats.commands += 1
                out.append(item)
        return out
