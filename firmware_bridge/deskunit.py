"""Sans-io codec of the desk unit UART protocol (docs/desk-unit-protocol.md).

Bytes in, frozen dataclasses out: `encode_frame` turns a message into wire bytes
(COBS + 0x00 delimiter) and `FrameDecoder.feed` turns any byte stream, however
chunked or corrupted, into `Frame`s and `Rejected`s. Nothing here does I/O or
reads a clock, so the Pi, the simulator, the tests and the benchmark share it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from firmware_bridge import cobs
from firmware_bridge.crc import crc16_ccitt_false
from firmware_bridge.decoder_stats import RejectCounts

PROTOCOL_VERSION = 1
MAX_FRAME_SIZE = 64
"""Largest decoded frame (header + payload + CRC) in bytes."""
MAX_ENCODED_SIZE = cobs.max_encoded_len(MAX_FRAME_SIZE)
"""Largest COBS-encoded frame, without its delimiter."""
HEADER_SIZE = 3
CRC_SIZE = 2
MIN_FRAME_SIZE = HEADER_SIZE + CRC_SIZE
DELIMITER = b"\x00"
SERIAL_MAX_LEN = 32
UID_LENGTHS = frozenset({4, 7, 10})


class MsgType(IntEnum):
    """The `type` byte of a frame."""

    HELLO = 0x01
    HEARTBEAT = 0x02
    PRESENCE_CHANGED = 0x03
    BADGE_READ = 0x04
    BUTTON_PRESSED = 0x05
    LED_SET = 0x10
    REQUEST_HELLO = 0x11
    BEEP = 0x12
    ACK = 0x7E
    NACK = 0x7F


class Capability(IntFlag):
    """Hardware fitted to a desk unit, announced in Hello."""

    NONE = 0
    NFC = 1
    PRESENCE = 2
    LED = 4
    BUTTON = 8
    BUZZER = 16


class LedPattern(IntEnum):
    OFF = 0
    SOLID = 1
    BLINK = 2
    PULSE = 3


class NackReason(IntEnum):
    BAD_CRC = 1
    UNKNOWN_TYPE = 2
    BAD_LENGTH = 3
    BAD_VERSION = 4
    BUSY = 5


def _u8(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be 0..255, got {value}")


@dataclass(frozen=True, slots=True)
class Hello:
    """Unit -> Pi: firmware version, fitted hardware and the unit's serial number."""

    fw_major: int
    fw_minor: int
    fw_patch: int
    capabilities: Capability
    serial: str

    def __post_init__(self) -> None:
        for name in ("fw_major", "fw_minor", "fw_patch"):
            _u8(name, getattr(self, name))
        _u8("capabilities", int(self.capabilities))
        if not 1 <= len(self.serial) <= SERIAL_MAX_LEN:
            raise ValueError(f"serial must be 1..{SERIAL_MAX_LEN} characters")
        if not all(" " <= ch <= "~" for ch in self.serial):
            raise ValueError("serial must be printable ASCII (0x20..0x7E)")

    @property
    def firmware(self) -> tuple[int, int, int]:
        """(major, minor, patch)."""
        return (self.fw_major, self.fw_minor, self.fw_patch)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Unit -> Pi: seconds since the unit booted; not acknowledged."""

    uptime_s: int

    def __post_init__(self) -> None:
        if not 0 <= self.uptime_s <= 0xFFFFFFFF:
            raise ValueError("uptime_s must fit in u32")


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """Unit -> Pi: the presence sensor's debounced state changed."""

    present: bool


@dataclass(frozen=True, slots=True)
class BadgeRead:
    """Unit -> Pi: an ISO/IEC 14443 card UID (4, 7 or 10 bytes) was read."""

    uid: bytes

    def __post_init__(self) -> None:
        if len(self.uid) not in UID_LENGTHS:
            raise ValueError(f"uid must be 4, 7 or 10 bytes, got {len(self.uid)}")


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """Unit -> Pi: button number `button` was pressed (long_press: held > 1 s)."""

    button: int
    long_press: bool = False

    def __post_init__(self) -> None:
        _u8("button", self.button)


@dataclass(frozen=True, slots=True)
class LedSet:
    """Pi -> unit: show a colour; duration_s 0 means until the next LedSet."""

    r: int
    g: int
    b: int
    pattern: LedPattern
    duration_s: int = 0

    def __post_init__(self) -> None:
        for name in ("r", "g", "b"):
            _u8(name, getattr(self, name))
        LedPattern(self.pattern)
        if not 0 <= self.duration_s <= 0xFFFF:
            raise ValueError("duration_s must fit in u16")


MAX_BEEPS = 8


@dataclass(frozen=True, slots=True)
class Beep:
    """Pi -> unit: sound the buzzer `count` times, each `on_ms` long with an equal gap."""

    count: int
    on_ms: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_BEEPS:
            raise ValueError(f"count must be 1..{MAX_BEEPS}, got {self.count}")
        if not 10 <= self.on_ms <= 5000:
            raise ValueError(f"on_ms must be 10..5000, got {self.on_ms}")


@dataclass(frozen=True, slots=True)
class RequestHello:
    """Pi -> unit: please send Hello (the Pi sends this when it opens the port)."""


@dataclass(frozen=True, slots=True)
class Ack:
    """Either way: the frame with seq `acked_seq` was received and accepted."""

    acked_seq: int

    def __post_init__(self) -> None:
        _u8("acked_seq", self.acked_seq)


@dataclass(frozen=True, slots=True)
class Nack:
    """Either way: the frame with seq `acked_seq` was refused for `reason`."""

    acked_seq: int
    reason: NackReason

    def __post_init__(self) -> None:
        _u8("acked_seq", self.acked_seq)
        NackReason(self.reason)


Message = (
    Hello
    | Heartbeat
    | PresenceChanged
    | BadgeRead
    | ButtonPressed
    | LedSet
    | Beep
    | RequestHello
    | Ack
    | Nack
)

MESSAGE_TYPES: dict[type[Message], MsgType] = {
    Hello: MsgType.HELLO,
    Heartbeat: MsgType.HEARTBEAT,
    PresenceChanged: MsgType.PRESENCE_CHANGED,
    BadgeRead: MsgType.BADGE_READ,
    ButtonPressed: MsgType.BUTTON_PRESSED,
    LedSet: MsgType.LED_SET,
    Beep: MsgType.BEEP,
    RequestHello: MsgType.REQUEST_HELLO,
    Ack: MsgType.ACK,
    Nack: MsgType.NACK,
}

UNIT_TO_PI: frozenset[MsgType] = frozenset(
    {
        MsgType.HELLO,
        MsgType.HEARTBEAT,
        MsgType.PRESENCE_CHANGED,
        MsgType.BADGE_READ,
        MsgType.BUTTON_PRESSED,
        MsgType.ACK,
        MsgType.NACK,
    }
)
"""Types the Pi accepts."""
PI_TO_UNIT: frozenset[MsgType] = frozenset(
    {MsgType.LED_SET, MsgType.BEEP, MsgType.REQUEST_HELLO, MsgType.ACK, MsgType.NACK}
)
"""Types a desk unit accepts."""


def msg_type(message: Message) -> MsgType:
    """The wire type of `message`."""
    return MESSAGE_TYPES[type(message)]


def needs_ack(message: Message) -> bool:
    """True if the receiver must answer with Ack/Nack (all but Heartbeat, Ack and Nack)."""
    return not isinstance(message, Heartbeat | Ack | Nack)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded, CRC-checked frame."""

    seq: int
    message: Message


@dataclass(frozen=True, slots=True)
class Rejected:
    """Bytes between two delimiters that are not a valid frame.

    reason is one of: "cobs", "too_long", "too_short", "bad_crc", "bad_version",
    "unknown_type", "bad_length", "bad_value". raw is the received (still
    COBS-encoded) bytes, truncated to MAX_ENCODED_SIZE + 1. seq is the header's
    seq byte when the frame was long enough to have one (untrusted if bad_crc),
    msg_type its type byte; the link layer uses them to Nack.
    """

    reason: str
    raw: bytes
    seq: int | None = None
    msg_type: int | None = None


REJECT_REASONS = (
    "cobs",
    "too_long",
    "too_short",
    "bad_crc",
    "bad_version",
    "unknown_type",
    "bad_length",
    "bad_value",
)


def _payload(message: Message) -> bytes:
    # One branch per type; the byte layout matches the tables in the protocol doc.
    match message:
        case Hello():
            serial = message.serial.encode("ascii")
            return (
                bytes(
                    (
                        message.fw_major,
                        message.fw_minor,
                        message.fw_patch,
                        int(message.capabilities),
                        len(serial),
                    )
                )
                + serial
            )
        case Heartbeat():
            return struct.pack(">I", message.uptime_s)
        case PresenceChanged():
            return bytes((1 if message.present else 0,))
        case BadgeRead():
            return bytes((len(message.uid),)) + message.uid
        case ButtonPressed():
            return bytes((message.button, 1 if message.long_press else 0))
        case LedSet():
            return bytes((message.r, message.g, message.b, int(message.pattern))) + struct.pack(
                ">H", message.duration_s
            )
        case Beep():
            return bytes((message.count,)) + struct.pack(">H", message.on_ms)
        case RequestHello():
            return b""
        case Ack():
            return bytes((message.acked_seq,))
        case Nack():
            return bytes((message.acked_seq, int(message.reason)))
    raise TypeError(f"not a desk unit message: {message!r}")  # pragma: no cover


def encode_body(seq: int, message: Message) -> bytes:
    """The decoded frame body: version, type, seq, payload and big-endian CRC."""
    _u8("seq", seq)
    head = bytes((PROTOCOL_VERSION, msg_type(message), seq)) + _payload(message)
    return head + struct.pack(">H", crc16_ccitt_false(head))


def encode_frame(seq: int, message: Message) -> bytes:
    """Wire bytes for one frame: COBS(body) followed by the 0x00 delimiter."""
    return cobs.encode(encode_body(seq, message)) + DELIMITER


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _flag(value: int) -> bool:
    # Booleans are strictly 0/1 on the wire: anything else signals a firmware
    # bug or corruption that slipped past the CRC, and must not read as True.
    if value > 1:
        raise _Reject("bad_value")
    return value == 1


def _fixed(payload: bytes, size: int) -> None:
    if len(payload) != size:
        raise _Reject("bad_length")


def _parse_payload(kind: MsgType, p: bytes) -> Message:
    if kind is MsgType.HELLO:
        if len(p) < 5 or len(p) != 5 + p[4]:
            raise _Reject("bad_length")
        if not 1 <= p[4] <= SERIAL_MAX_LEN:
            raise _Reject("bad_value")
        return Hello(p[0], p[1], p[2], Capability(p[3]), p[5:].decode("latin-1"))
    if kind is MsgType.HEARTBEAT:
        _fixed(p, 4)
        return Heartbeat(struct.unpack(">I", p)[0])
    if kind is MsgType.PRESENCE_CHANGED:
        _fixed(p, 1)
        return PresenceChanged(_flag(p[0]))
    if kind is MsgType.BADGE_READ:
        if len(p) < 1 or len(p) != 1 + p[0]:
            raise _Reject("bad_length")
        return BadgeRead(p[1:])
    if kind is MsgType.BUTTON_PRESSED:
        _fixed(p, 2)
        return ButtonPressed(p[0], _flag(p[1]))
    if kind is MsgType.LED_SET:
        _fixed(p, 6)
        return LedSet(p[0], p[1], p[2], LedPattern(p[3]), struct.unpack(">H", p[4:6])[0])
    if kind is MsgType.BEEP:
        _fixed(p, 3)
        return Beep(p[0], struct.unpack(">H", p[1:3])[0])
    if kind is MsgType.REQUEST_HELLO:
        _fixed(p, 0)
        return RequestHello()
    if kind is MsgType.ACK:
        _fixed(p, 1)
        return Ack(p[0])
    _fixed(p, 2)  # MsgType.NACK
    return Nack(p[0], NackReason(p[1]))


def decode_body(raw: bytes, body: bytes) -> Frame | Rejected:
    """Check and parse one COBS-decoded body; `raw` is kept for the Rejected report."""
    if len(body) < MIN_FRAME_SIZE:
        return Rejected("too_short", raw)
    seq, type_byte = body[2], body[1]
    if len(body) > MAX_FRAME_SIZE:
        return Rejected("too_long", raw, seq, type_byte)
    # CRC first: a bit flip in the version or type byte is corruption, not a
    # protocol mismatch, and must be reported (and Nacked) as such.
    if crc16_ccitt_false(body[:-2]) != (body[-2] << 8 | body[-1]):
        return Rejected("bad_crc", raw, seq, type_byte)
    if body[0] != PROTOCOL_VERSION:
        return Rejected("bad_version", raw, seq, type_byte)
    try:
        kind = MsgType(type_byte)
    except ValueError:
        return Rejected("unknown_type", raw, seq, type_byte)
    try:
        message = _parse_payload(kind, body[HEADER_SIZE:-CRC_SIZE])
    except _Reject as exc:
        return Rejected(exc.reason, raw, seq, type_byte)
    except ValueError:
        # Raised by the dataclass checks (uid length, serial charset, enum value).
        return Rejected("bad_value", raw, seq, type_byte)
    return Frame(seq, message)


@dataclass
class DecoderStats(RejectCounts):
    """Running counts of a FrameDecoder: what it accepted, besides the rejects."""

    frames: int = 0


class FrameDecoder:
    """Incremental decoder: feed any chunks of the byte stream, get frames and rejects.

    Never raises on input. Holds at most MAX_ENCODED_SIZE bytes of an unfinished
    frame; a longer run without a delimiter is reported once as "too_long" and
    skipped up to the next 0x00, where decoding resynchronises.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._skipping = False
        self.stats = DecoderStats()

    def reset(self) -> None:
        """Forget any partial frame (e.g. after reopening the port)."""
        self._pending = b""
        self._skipping = False

    def _reject(self, item: Rejected, out: list[Frame | Rejected]) -> None:
        self.stats.reject(item.reason)
        out.append(item)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | Rejected]:
        out: list[Frame | Rejected] = []
        if not data:
            return out
        # bytes.split does the delimiter scan in C; per-byte Python loops would
        # cap the decoder at a few hundred kB/s.
        parts = bytes(data).split(DELIMITER)
        tail = parts.pop()
        for index, chunk in enumerate(parts):
            if index == 0:
                if self._skipping:
                    # The rest of an over-long run, already reported.
                    self._skipping = False
                    self._pending = b""
                    continue
                chunk = self._pending + chunk
                self._pending = b""
            if not chunk:
                continue  # empty frame: a sender flushing with an extra 0x00
            self._decode_chunk(chunk, out)
        if len(parts) == 0 and self._skipping:
            return out
        pending = self._pending + tail if not parts else tail
        if len(pending) > MAX_ENCODED_SIZE:
            self._reject(Rejected("too_long", pending[: MAX_ENCODED_SIZE + 1]), out)
            self._skipping = True
            pending = b""
        self._pending = pending
        return out

    def _decode_chunk(self, chunk: bytes, out: list[Frame | Rejected]) -> None:
        if len(chunk) > MAX_ENCODED_SIZE:
            self._reject(Rejected("too_long", chunk[: MAX_ENCODED_SIZE + 1]), out)
            return
        try:
            body = cobs.decode(chunk)
        except cobs.CobsError:
            self._reject(Rejected("cobs", chunk), out)
            return
        item = decode_body(chunk, body)
        if isinstance(item, Rejected):
            self._reject(item, out)
        else:
            self.stats.frames += 1
            out.append(item)
