"""CRC-16/CCITT-FALSE, the checksum that closes every desk unit frame.

Parameters: poly 0x1021, init 0xFFFF, no input/output reflection, xorout 0.
Check value: crc16_ccitt_false(b"123456789") == 0x29B1.
"""

from __future__ import annotations

POLY = 0x1021
INIT = 0xFFFF


def _make_table() -> tuple[int, ...]:
    # A 256-entry table turns the bit loop into one lookup per byte; this
    # matters because the decoder checks every frame on a busy floor.
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ POLY) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _make_table()


def crc16_ccitt_false(data: bytes | bytearray | memoryview, crc: int = INIT) -> int:
    """Return the CRC of `data`; pass a previous result as `crc` to continue a running sum."""
    table = _TABLE
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc
