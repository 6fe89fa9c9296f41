"""Sans-io codec of NMEA 0183 sentences from serial GNSS receivers.

`LineDecoder.feed` turns any chunking of the byte stream into parsed sentences
(`GGA`, `RMC`, `VTG`, or `OtherSentence` for the valid sentences not modelled
here, such as GSA/GSV) and `Rejected` items; `encode` writes GGA/RMC/VTG back as
wire bytes for the simulator. Checksums are verified, lines are bounded to the
standard's 82 characters, and nothing here does I/O or reads a clock.
See docs/devices/gps.md for the fields and the example sentences.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.decoder_stats import RejectCounts

MAX_SENTENCE_LEN = 82
"""NMEA 0183 limit, counting the leading '$' and the trailing CR LF."""
KNOT_KMH = 1.852
TALKERS = frozenset({"GP", "GN", "GL", "GA", "GB", "BD", "GQ"})
"""GPS, multi-GNSS, GLONASS, Galileo, BeiDou (two spellings), QZSS."""


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GGA:
    """Global positioning fix data."""

    talker: str
    time: dt.time | None
    lat: float | None
    lon: float | None
    fix_quality: int
    """0 no fix, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead reckoning ..."""
    satellites: int | None
    hdop: float | None
    altitude_m: float | None
    geoid_separation_m: float | None = None

    @property
    def has_fix(self) -> bool:
        return self.fix_quality > 0 and self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class RMC:
    """Recommended minimum data: position, speed over ground, course, date."""

    talker: str
    time: dt.time | None
    valid: bool
    """Status A (valid) or V (receiver warning: no usable fix)."""
    lat: float | None
    lon: float | None
    speed_knots: float | None
    course_deg: float | None
    date: dt.date | None
    magnetic_variation_deg: float | None = None
    """East positive, west negative."""
    mode: str | None = None
    """NMEA 2.3 mode indicator: A autonomous, D differential, E estimated, N not valid."""

    @property
    def speed_kmh(self) -> float | None:
        return None if self.speed_knots is None else self.speed_knots * KNOT_KMH

    @property
    def has_fix(self) -> bool:
        return self.valid and self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class VTG:
    """Course and speed over ground."""

    talker: str
    course_true_deg: float | None
    course_magnetic_deg: float | None
    speed_knots: float | None
    speed_kmh: float | None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class OtherSentence:
    """A checksum-valid sentence of a type this codec does not parse."""

    talker: str
    kind: str
    fields: tuple[str, ...]


Sentence = GGA | RMC | VTG | OtherSentence


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line that is not a valid sentence.

    reason is one of REJECT_REASONS: "garbage" (no '$', non-ASCII, or bytes
    before the '$'), "too_long" (over 82 characters), "no_checksum",
    "bad_checksum", "bad_address" (not a 5-letter talker+type), "bad_field"
    (a GGA/RMC/VTG field that does not parse). raw is the line, truncated.
    """

    reason: str
    raw: bytes


REJECT_REASONS = (
    "garbage",
    "too_long",
    "no_checksum",
    "bad_checksum",
    "bad_address",
    "bad_field",
)

Item = Sentence | Rejected


def checksum(body: str | bytes) -> int:
    """XOR of all characters between '$' and '*'."""
    data = body.encode("ascii") if isinstance(body, str) else body
    value = 0
    for byte in data:
        value ^= byte
    return value


# --- field helpers -------------------------------------------------------------------------


def _opt_float(text: str) -> float | None:
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _opt_int(text: str) -> int | None:
    return int(text) if text else None


def _time(text: str) -> dt.time | None:
    if not text:
        return None
    if len(text) < 6 or not text[:6].isdigit():
        raise ValueError("bad time")
    seconds = float(text[4:])
    whole = int(seconds)
    micro = round((seconds - whole) * 1_000_000)
    return dt.time(int(text[:2]), int(text[2:4]), whole, min(micro, 999_999))


def _date(text: str) -> dt.date | None:
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise ValueError("bad date")
    # Two-digit years: GPS time starts in 1980, so 80..99 are the 1900s.
    yy = int(text[4:])
    return dt.date((1900 if yy >= 80 else 2000) + yy, int(text[2:4]), int(text[:2]))


def _coord(text: str, hemisphere: str, degree_digits: int, limit: float) -> float | None:
    if not text and not hemisphere:
        return None
    dot = text.find(".")
    head = text if dot < 0 else text[:dot]
    if len(head) != degree_digits + 2 or not head.isdigit():
        raise ValueError("bad coordinate")
    degrees = int(text[:degree_digits])
    minutes = float(text[degree_digits:])
    if minutes >= 60:
        raise ValueError("minutes out of range")
    value = degrees + minutes / 60
    if value > limit:
        raise ValueError("coordinate out of range")
    if hemisphere in ("S", "W"):
        return -value
    if hemisphere in ("N", "E"):
        return value
    raise ValueError("bad hemisphere")


def _mode(text: str) -> str | None:
    if not text:
        return None
    if len(text) != 1 or not text.isalpha():
        raise ValueError("bad mode")
    return text


def _need(fields: list[str], count: int) -> None:
    if len(fields) < count:
        raise _Reject("bad_field")


def _parse_gga(talker: str, f: list[str]) -> GGA:
    _need(f, 14)
    return GGA(
        talker,
        _time(f[0]),
        _coord(f[1], f[2], 2, 90),
        _coord(f[3], f[4], 3, 180),
        int(f[5]) if f[5] else 0,
        _opt_int(f[6]),
        _opt_float(f[7]),
        _opt_float(f[8]),
        _opt_float(f[10]),
    )


def _parse_rmc(talker: str, f: list[str]) -> RMC:
    _need(f, 11)
    if f[1] not in ("A", "V"):
        raise ValueError("bad status")
    variation = _opt_float(f[9])
    if variation is not None and f[10] == "W":
        variation = -variation
    return RMC(
        talker,
        _time(f[0]),
        f[1] == "A",
        _coord(f[2], f[3], 2, 90),
        _coord(f[4], f[5], 3, 180),
        _opt_float(f[6]),
        _opt_float(f[7]),
        _date(f[8]),
        variation,
        _mode(f[11]) if len(f) > 11 else None,
    )


def _parse_vtg(talker: str, f: list[str]) -> VTG:
    _need(f, 8)
    return VTG(
        talker,
        _opt_float(f[0]),
        _opt_float(f[2]),
        _opt_float(f[4]),
        _opt_float(f[6]),
        _mode(f[8]) if len(f) > 8 else None,
    )


_PARSERS: dict[str, Callable[[str, list[str]], GGA | RMC | VTG]] = {
    "GGA": _parse_gga,
    "RMC": _parse_rmc,
    "VTG": _parse_vtg,
}


def parse_sentence(line: bytes) -> Item:
    """Parse one line that starts with '$' (CR LF already stripped)."""
    if len(line) + 2 > MAX_SENTENCE_LEN:
        return Rejected("too_long", line[: MAX_SENTENCE_LEN + 1])
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return Rejected("garbage", line)
    if not text.isprintable():
        return Rejected("garbage", line)
    star = text.rfind("*")
    if star < 0 or len(text) - star != 3:
        return Rejected("no_checksum", line)
    body = text[1:star]
    try:
        expected = int(text[star + 1 :], 16)
    except ValueError:
        return Rejected("no_checksum", line)
    if checksum(body) != expected:
        return Rejected("bad_checksum", line)
    fields = body.split(",")
    address = fields.pop(0)
    if address.startswith("P") and len(address) >= 2:
        # Proprietary sentences ($PUBX, $PMTK...) carry a maker id, not a talker.
        return OtherSentence("P", address[1:], tuple(fields))
    if len(address) != 5 or not address.isalnum() or not address.isupper():
        return Rejected("bad_address", line)
    talker, kind = address[:2], address[2:]
    parser = _PARSERS.get(kind)
    if parser is None or talker not in TALKERS:
        return OtherSentence(talker, kind, tuple(fields))
    try:
        return parser(talker, fields)
    except (_Reject, ValueError):
        return Rejected("bad_field", line)


# --- encoding --------------------------------------------------------------------------------


def encode_sentence(address: str, fields: list[str] | tuple[str, ...]) -> bytes:
    """`$address,f1,f2...*HH\\r\\n` with the checksum filled in."""
    body = ",".join((address, *fields))
    return f"${body}*{checksum(body):02X}\r\n".encode("ascii")


def _fmt(value: float | None, decimals: int, width: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:0{width}.{decimals}f}" if width else f"{value:.{decimals}f}"


def _fmt_time(value: dt.time | None) -> str:
    if value is None:
        return ""
    centi = value.microsecond // 10_000
    return f"{value.hour:02d}{value.minute:02d}{value.second:02d}.{centi:02d}"


def _fmt_coord(value: float | None, degree_digits: int, pos: str, neg: str) -> tuple[str, str]:
    if value is None:
        return "", ""
    hemisphere = pos if value >= 0 else neg
    # Round in units of 1e-5 minute first so 59.999996' carries into the degrees.
    total = round(abs(value) * 60 * 100_000)
    degrees, rest = divmod(total, 60 * 100_000)
    return f"{degrees:0{degree_digits}d}{rest // 100_000:02d}.{rest % 100_000:05d}", hemisphere


def encode(sentence: GGA | RMC | VTG) -> bytes:
    """Wire bytes of a GGA, RMC or VTG sentence (coordinates to 1e-5 minute)."""
    match sentence:
        case GGA():
            lat, ns = _fmt_coord(sentence.lat, 2, "N", "S")
            lon, ew = _fmt_coord(sentence.lon, 3, "E", "W")
            fields = [
                _fmt_time(sentence.time),
                lat,
                ns,
                lon,
                ew,
                str(sentence.fix_quality),
                "" if sentence.satellites is None else f"{sentence.satellites:02d}",
                _fmt(sentence.hdop, 2),
                _fmt(sentence.altitude_m, 1),
                "M" if sentence.altitude_m is not None else "",
                _fmt(sentence.geoid_separation_m, 1),
                "M" if sentence.geoid_separation_m is not None else "",
                "",
                "",
            ]
            return encode_sentence(sentence.talker + "GGA", fields)
        case RMC():
            lat, ns = _fmt_coord(sentence.lat, 2, "N", "S")
            lon, ew = _fmt_coord(sentence.lon, 3, "E", "W")
            var = sentence.magnetic_variation_deg
            date = sentence.date
            fields = [
                _fmt_time(sentence.time),
                "A" if sentence.valid else "V",
                lat,
                ns,
                lon,
                ew,
                _fmt(sentence.speed_knots, 3),
                _fmt(sentence.course_deg, 2),
                "" if date is None else f"{date.day:02d}{date.month:02d}{date.year % 100:02d}",
                "" if var is None else f"{abs(var):.1f}",
                "" if var is None else ("E" if var >= 0 else "W"),
            ]
            if sentence.mode is not None:
                fields.append(sentence.mode)
            return encode_sentence(sentence.talker + "RMC", fields)
        case VTG():
            fields = [
                _fmt(sentence.course_true_deg, 2),
                "T",
                _fmt(sentence.course_magnetic_deg, 2),
                "M",
                _fmt(sentence.speed_knots, 3),
                "N",
                _fmt(sentence.speed_kmh, 3),
                "K",
            ]
            if sentence.mode is not None:
                fields.append(sentence.mode)
            return encode_sentence(sentence.talker + "VTG", fields)
    raise TypeError(f"cannot encode {sentence!r}")  # pragma: no cover


# --- line decoder ------------------------------------------------------------------------------


@dataclass
class DecoderStats(RejectCounts):
    """Running counts of a LineDecoder: what it accepted, besides the rejects."""

    sentences: int = 0


class LineDecoder:
    """Incremental sentence decoder: feed chunks, get sentences and rejects.

    Never raises on input. A '$' always starts a new sentence, so a sentence
    cut short by the next one is rejected ("no_checksum") without taking its
    successor with it. An unfinished line longer than 82 characters is
    reported once as "too_long" and skipped up to the next '$' or line end.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._skipping = False
        self.stats = DecoderStats()

    def reset(self) -> None:
        self._pending = b""
        self._skipping = False

    def _reject(self, item: Rejected, out: list[Item]) -> None:
        self.stats.reject(item.reason)
        out.append(item)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Item]:
        out: list[Item] = []
        if not data:
            return out
        lines = (self._pending + bytes(data)).split(b"\n")
        tail = lines.pop()
        for line in lines:
            self._line(line.rstrip(b"\r"), out)
            self._skipping = False
        self._pending = b""
        if len(tail) > MAX_SENTENCE_LEN:
            start = tail.rfind(b"$", 1)
            if start > 0 and len(tail) - start <= MAX_SENTENCE_LEN:
                self._line(tail[:start], out)
                tail = tail[start:]
            else:
                if not self._skipping:
                    self._reject(Rejected("too_long", tail[: MAX_SENTENCE_LEN + 1]), out)
                self._skipping = True
                # Keep a trailing '$...' only if it may still become a sentence.
                start = tail.rfind(b"$")
                tail = tail[start:] if start >= 0 else b""
                if len(tail) > MAX_SENTENCE_LEN:
                    tail = b""
        self._pending = tail
        return out

    def _line(self, line: bytes, out: list[Item]) -> None:
        parts = line.split(b"$")
        head = parts[0]
        if head.strip() and not self._skipping:
            self._reject(Rejected("garbage", head[: MAX_SENTENCE_LEN + 1]), out)
        self._skipping = False
        for part in parts[1:]:
            item = parse_sentence(b"$" + part)
            if isinstance(item, Rejected):
                self._reject(item, out)
            else:
                self.stats.sentences += 1
                out.append(item)
