"""The byte examples in docs/desk-unit-protocol.md, parsed from the doc itself.

Doc and code cannot drift: every vector row must encode and decode exactly, and
every message constructed here must have a row in the doc.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firmware_bridge.crc import crc16_ccitt_false
from firmware_bridge.deskunit import (
    Ack,
    BadgeRead,
    Beep,
    ButtonPressed,
    Capability,
    Frame,
    FrameDecoder,
    Heartbeat,
    Hello,
    LedPattern,
    LedSet,
    Message,
    Nack,
    NackReason,
    PresenceChanged,
    RequestHello,
    encode_body,
    encode_frame,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "desk-unit-protocol.md"

MESSAGES: dict[str, Message] = {
    "hello": Hello(1, 4, 2, Capability(0x0F), "RU-DU-000001"),
    "heartbeat": Heartbeat(3600),
    "presence": PresenceChanged(True),
    "badge4": BadgeRead(bytes.fromhex("04A1B2C3")),
    "badge7": BadgeRead(bytes.fromhex("04A224E2005C80")),
    "button": ButtonPressed(1, long_press=True),
    "ledset": LedSet(0, 255, 0, LedPattern.PULSE, 30),
    "requesthello": RequestHello(),
    "beep": Beep(2, 100),
    "ack": Ack(3),
    "nack": Nack(0x20, NackReason.BAD_CRC),
}


def _vectors() -> dict[str, tuple[int, bytes, bytes, bytes]]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- vectors:begin -->(.*?)<!-- vectors:end -->", text, re.S)
    assert block, "vector table markers missing from the protocol doc"
    rows: dict[str, tuple[int, bytes, bytes, bytes]] = {}
    for line in block.group(1).strip().splitlines()[2:]:  # skip header + rule
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name, _description, seq, body, crc, wire = cells
        rows[name] = (int(seq, 16), bytes.fromhex(body), bytes.fromhex(crc), bytes.fromhex(wire))
    return rows


VECTORS = _vectors()


def test_crc_check_value_is_0x29b1() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_doc_has_a_vector_for_every_message_type_and_no_unknown_rows() -> None:
    assert set(VECTORS) == set(MESSAGES)
    assert {type(m) for m in MESSAGES.values()} == {
        Hello, Heartbeat, PresenceChanged, BadgeRead, ButtonPressed, LedSet, RequestHello,
        Beep, Ack, Nack,
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_doc_vector_encodes_exactly(name: str) -> None:
    seq, body, crc, wire = VECTORS[name]
    assert crc16_ccitt_false(body).to_bytes(2, "big") == crc
    assert encode_body(seq, MESSAGES[name]) == body + crc
    assert encode_frame(seq, MESSAGES[name]) == wire


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_doc_vector_decodes_to_the_message(name: str) -> None:
    seq, _body, _crc, wire = VECTORS[name]
    assert FrameDecoder().feed(wire) == [Frame(seq, MESSAGES[name])]


def test_all_doc_vectors_back_to_back_decode_in_order() -> None:
    stream = b"".join(VECTORS[name][3] for name in MESSAGES)
    frames = FrameDecoder().feed(stream)
    assert frames == [Frame(VECTORS[name][0], MESSAGES[name]) for name in MESSAGES]
