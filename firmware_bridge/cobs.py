"""Consistent Overhead Byte Stuffing (COBS): removes every 0x00 from a frame.

With no zero bytes left inside a frame, a single 0x00 on the wire marks the
frame end, so a receiver that lost sync (noise, reset mid-frame) recovers at the
next 0x00. Encoding costs at most one byte per 254 bytes of payload.
"""

from __future__ import annotations


class CobsError(ValueError):
    """The bytes are not a valid COBS encoding (a block runs past the end, or a 0x00 inside)."""


def max_encoded_len(decoded_len: int) -> int:
    """Longest COBS encoding (without delimiter) of `decoded_len` bytes."""
    return decoded_len + decoded_len // 254 + 1


def encode(data: bytes) -> bytes:
    """COBS-encode `data`; the result contains no 0x00 and no delimiter."""
    out = bytearray()
    segments = data.split(b"\x00")
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        # Each zero-separated run becomes one or more blocks: a length code
        # then up to 254 data bytes. A full block (code 0xFF) implies no zero.
        while len(segment) >= 254:
            out.append(0xFF)
            out += segment[:254]
            segment = segment[254:]
            if not segment and index == last:
                # Canonical form: a final full block needs no empty block after it.
                return bytes(out)
        out.append(len(segment) + 1)
        out += segment
    return bytes(out)


def decode(data: bytes) -> bytes:
    """Decode one COBS block sequence (delimiter already stripped); raise CobsError if invalid."""
    out = bytearray()
    size = len(data)
    index = 0
    while index < size:
        code = data[index]
        if code == 0:
            raise CobsError("0x00 inside a COBS frame")
        end = index + code
        if end > size:
            raise CobsError("COBS block runs past the end of the frame")
        block = data[index + 1 : end]
        if 0 in block:
            raise CobsError("0x00 inside a COBS frame")
        out += block
        index = end
        # The implied zero after a short block is dropped at the very end:
        # it stands for the delimiter, not for frame content.
        if code < 0xFF and index < size:
            out.append(0)
    return bytes(out)
