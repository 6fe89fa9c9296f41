"""Property tests of the codec: COBS, CRC, round trips, chunking, noise and resync."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import cobs
from firmware_bridge.crc import crc16_ccitt_false
from firmware_bridge.deskunit import (
    MAX_ENCODED_SIZE,
    REJECT_REASONS,
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
    Rejected,
    RequestHello,
    encode_body,
    encode_frame,
    needs_ack,
)

u8 = st.integers(0, 255)
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=32)

uids = st.sampled_from([4, 7, 10]).flatmap(lambda n: st.binary(min_size=n, max_size=n))

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Hello, u8, u8, u8, st.builds(Capability, st.integers(0, 31)), printable),
    st.builds(Heartbeat, st.integers(0, 0xFFFFFFFF)),
    st.builds(PresenceChanged, st.booleans()),
    st.builds(BadgeRead, uids),
    st.builds(ButtonPressed, u8, st.booleans()),
    st.builds(LedSet, u8, u8, u8, st.sampled_from(LedPattern), st.integers(0, 0xFFFF)),
    st.just(RequestHello()),
    st.builds(Beep, st.integers(1, 8), st.integers(10, 5000)),
    st.builds(Ack, u8),
    st.builds(Nack, u8, st.sampled_from(NackReason)),
)
frames = st.builds(Frame, u8, messages)


def _crc_bitwise(data: bytes) -> int:
    # Straight from the definition, to check the table-driven implementation.
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)] if sizes else len(data)
        out.append(data[pos : pos + size])
        pos += size
        i += 1
    return out


@given(st.binary(max_size=600))
def test_cobs_round_trips_and_never_emits_zero(data: bytes) -> None:
    encoded = cobs.encode(data)
    assert 0 not in encoded
    assert len(encoded) <= cobs.max_encoded_len(len(data))
    assert cobs.decode(encoded) == data


def test_cobs_full_block_at_end_is_canonical() -> None:
    data = bytes(range(1, 255))
    assert cobs.encode(data) == b"\xff" + data


@given(st.binary(max_size=200))
def test_crc_table_matches_bitwise_definition(data: bytes) -> None:
    assert crc16_ccitt_false(data) == _crc_bitwise(data)


@given(frames)
def test_every_message_round_trips_through_encode_and_decoder(frame: Frame) -> None:
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(frame.seq, frame.message)) == [frame]
    assert decoder.stats.frames == 1 and decoder.stats.rejected == 0


@given(st.lists(frames, min_size=1, max_size=20), st.lists(st.integers(1, 70), max_size=10))
def test_stream_split_into_random_chunks_decodes_the_same_frames(
    batch: list[Frame], sizes: list[int]
) -> None:
    stream = b"".join(encode_frame(f.seq, f.message) for f in batch)
    decoder = FrameDecoder()
    out: list[Frame | Rejected] = []
    for chunk in _chunks(stream, sizes):
        out += decoder.feed(chunk)
    assert out == batch


@given(st.binary(max_size=2000), st.lists(st.integers(1, 100), max_size=8))
def test_decoder_never_raises_on_arbitrary_bytes_and_counts_every_reject(
    noise: bytes, sizes: list[int]
) -> None:
    decoder = FrameDecoder()
    out: list[Frame | Rejected] = []
    for chunk in _chunks(noise, sizes):
        out += decoder.feed(chunk)
    rejects = [item for item in out if isinstance(item, Rejected)]
    assert decoder.stats.rejected == len(rejects)
    assert sum(decoder.stats.by_reason.values()) == len(rejects)
    assert all(item.reason in REJECT_REASONS for item in rejects)
    assert all(len(item.raw) <= MAX_ENCODED_SIZE + 1 for item in rejects)


@given(frames, st.binary(max_size=300), frames)
def test_decoder_resynchronises_after_noise_ended_by_a_delimiter(
    before: Frame, noise: bytes, after: Frame
) -> None:
    decoder = FrameDecoder()
    stream = encode_frame(before.seq, before.message) + noise + b"\x00"
    stream += encode_frame(after.seq, after.message)
    out = decoder.feed(stream)
    good = [item for item in out if isinstance(item, Frame)]
    assert good[0] == before
    assert out[-1] == after


@given(frames, st.data())
def test_any_single_bit_flip_is_rejected_then_resynchronised(
    frame: Frame, data: st.DataObject
) -> None:
    wire = bytearray(encode_frame(frame.seq, frame.message))
    bit = data.draw(st.integers(0, (len(wire) - 1) * 8 - 1))  # not the delimiter
    wire[bit // 8] ^= 1 << (bit % 8)
    good = Frame(7, Heartbeat(42))
    decoder = FrameDecoder()
    out = decoder.feed(bytes(wire) + b"\x00" + encode_frame(good.seq, good.message))
    # CRC-16 detects every single-bit error, so the flipped frame never decodes...
    assert frame not in out
    assert not any(isinstance(item, Frame) and item != good for item in out)
    # ...and the next frame after a delimiter always does.
    assert out[-1] == good


def test_truncated_frame_is_rejected_and_next_frame_decodes() -> None:
    decoder = FrameDecoder()
    full = encode_frame(1, BadgeRead(b"\x04\xa1\xb2\xc3"))
    out = decoder.feed(full[:6] + b"\x00" + encode_frame(2, PresenceChanged(True)))
    assert isinstance(out[0], Rejected) and out[0].reason in {"cobs", "too_short", "bad_crc"}
    assert out[1] == Frame(2, PresenceChanged(True))


def test_bad_crc_is_counted_with_seq_for_the_nack() -> None:
    body = bytearray(encode_body(9, PresenceChanged(True)))
    body[-1] ^= 0xFF
    decoder = FrameDecoder()
    [item] = decoder.feed(cobs.encode(bytes(body)) + b"\x00")
    assert item == Rejected("bad_crc", cobs.encode(bytes(body)), seq=9, msg_type=0x03)
    assert decoder.stats.by_reason == {"bad_crc": 1}


def _framed(body_without_crc: bytes) -> bytes:
    crc = crc16_ccitt_false(body_without_crc).to_bytes(2, "big")
    return cobs.encode(body_without_crc + crc) + b"\x00"


def test_semantic_rejects_are_classified_by_reason() -> None:
    decoder = FrameDecoder()
    cases = {
        "bad_version": _framed(b"\x02\x03\x00\x01"),
        "unknown_type": _framed(b"\x01\x42\x00"),
        "bad_length": _framed(b"\x01\x03\x00\x01\x01"),
        "bad_value": _framed(b"\x01\x03\x00\x02"),  # present must be 0/1
        "too_short": cobs.encode(b"\x01\x03") + b"\x00",
    }
    for reason, wire in cases.items():
        [item] = decoder.feed(wire)
        assert isinstance(item, Rejected) and item.reason == reason, reason
    bad_uid_len = _framed(b"\x01\x04\x00\x05" + b"\x11" * 5)
    bad_serial = _framed(b"\x01\x01\x00\x01\x00\x00\x0f\x01\x07")
    bad_pattern = _framed(b"\x01\x10\x00\x00\x00\x00\x09\x00\x00")
    for wire in (bad_uid_len, bad_serial, bad_pattern):
        [item] = decoder.feed(wire)
        assert isinstance(item, Rejected) and item.reason == "bad_value"
    assert decoder.stats.rejected == 8 and decoder.stats.frames == 0


def test_run_without_delimiter_is_bounded_reported_once_and_skipped() -> None:
    decoder = FrameDecoder()
    out = []
    for _ in range(50):  # 5000 non-zero bytes, fed in pieces
        out += decoder.feed(b"\x55" * 100)
    assert [item.reason for item in out if isinstance(item, Rejected)] == ["too_long"]
    assert len(decoder._pending) <= MAX_ENCODED_SIZE
    out = decoder.feed(b"\x55\x00" + encode_frame(3, Ack(1)))
    assert out == [Frame(3, Ack(1))]
    assert decoder.stats.by_reason == {"too_long": 1}


def test_empty_frames_are_skipped_silently() -> None:
    decoder = FrameDecoder()
    out = decoder.feed(b"\x00\x00\x00" + encode_frame(1, RequestHello()) + b"\x00")
    assert out == [Frame(1, RequestHello())]
    assert decoder.stats.rejected == 0


@settings(max_examples=30)
@given(st.lists(frames, min_size=5, max_size=30), st.integers(0, 2**32))
def test_random_noise_between_frames_loses_at_most_the_neighbouring_frame(
    batch: list[Frame], seed: int
) -> None:
    rng = random.Random(seed)
    stream = bytearray()
    after_noise: list[bool] = []
    noise_pending = False
    for frame in batch:
        stream += encode_frame(frame.seq, frame.message)
        after_noise.append(noise_pending)
        noise_pending = rng.random() < 0.3
        if noise_pending:
            stream += bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 80)))
    stream += b"\x00"  # ends any trailing noise, so it is judged too
    decoder = FrameDecoder()
    out = decoder.feed(bytes(stream))
    decoded = [item for item in out if isinstance(item, Frame)]
    # Noise has no 0x00, so it glues onto the frame after it and spoils only that one.
    assert decoded == [f for f, spoiled in zip(batch, after_noise, strict=True) if not spoiled]
    assert decoder.stats.rejected == sum(after_noise) + noise_pending


def test_needs_ack_is_false_only_for_heartbeat_ack_and_nack() -> None:
    assert not needs_ack(Heartbeat(1))
    assert not needs_ack(Ack(1))
    assert not needs_ack(Nack(1, NackReason.BUSY))
    for message in (
        Hello(1, 0, 0, Capability.NFC, "X"),
        PresenceChanged(False),
        BadgeRead(b"1234"),
        ButtonPressed(0),
        LedSet(1, 2, 3, LedPattern.BLINK),
        RequestHello(),
    ):
        assert needs_ack(message)
