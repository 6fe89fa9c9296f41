"""LD2410 codec: the doc's byte vectors, round-trips, and resync after noise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.ld2410 import (
    ALL_GATES,
    MAX_FRAME_LEN,
    Ack,
    CloseEngineering,
    Command,
    CommandWord,
    ConfigurationInfo,
    EnableConfiguration,
    EnableEngineering,
    EndConfiguration,
    Engineering,
    FactoryReset,
    FirmwareVersion,
    FrameDecoder,
    Item,
    Parameters,
    ReadFirmwareVersion,
    ReadParameters,
    Rejected,
    Report,
    Restart,
    SetGateSensitivity,
    SetMaxGates,
    TargetState,
    encode_ack,
    encode_command,
    encode_report,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "devices" / "ld2410.md"

EXPECTED: dict[str, Item] = {
    "enable_config": EnableConfiguration(),
    "enable_config_ack": Ack(0x00FF, 0, ConfigurationInfo(1, 0x40)),
    "end_config": EndConfiguration(),
    "end_config_ack": Ack(0x00FE),
    "set_max_gates": SetMaxGates(8, 8, 5),
    "set_max_gates_ack": Ack(0x0060),
    "read_params": ReadParameters(),
    "read_params_ack": Ack(
        0x0061,
        0,
        Parameters(
            8, 8, 8, (50, 50, 40, 30, 20, 15, 15, 15, 15), (0, 0, 40, 40, 30, 30, 20, 20, 20), 5
        ),
    ),
    "enable_eng": EnableEngineering(),
    "enable_eng_ack": Ack(0x0062),
    "close_eng": CloseEngineering(),
    "set_sensitivity": SetGateSensitivity(ALL_GATES, 40, 40),
    "read_firmware": ReadFirmwareVersion(),
    "read_firmware_ack": Ack(0x00A0, 0, FirmwareVersion(0x0100, 0x0204, 0x23022511)),
    "factory_reset": FactoryReset(),
    "restart": Restart(),
    "failed_ack": Ack(0x0060, 1),
    "basic_report": Report(TargetState.STATIONARY, 81, 0, 0, 59, 0),
    "engineering_report": Report(
        TargetState.BOTH,
        30,
        60,
        0,
        57,
        0,
        Engineering(
            8, 8, (60, 34, 5, 3, 3, 4, 3, 6, 5), (0, 0, 57, 16, 19, 6, 6, 8, 4), b"\x03\x05"
        ),
    ),
}


def _vectors() -> dict[str, bytes]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- vectors:begin -->(.*?)<!-- vectors:end -->", text, re.S)
    assert block, "vector table markers missing from docs/devices/ld2410.md"
    rows = {}
    for line in block.group(1).strip().splitlines()[2:]:
        name, _description, hexbytes = (c.strip() for c in line.strip().strip("|").split("|"))
        rows[name] = bytes.fromhex(hexbytes)
    return rows


VECTORS = _vectors()


def _encode(item: Item) -> bytes:
    if isinstance(item, Report):
        return encode_report(item)
    if isinstance(item, Ack):
        return encode_ack(item)
    assert not isinstance(item, Rejected)
    return encode_command(item)


def test_doc_has_exactly_the_expected_vectors() -> None:
    assert set(VECTORS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_doc_vector_decodes_to_the_named_item(name: str) -> None:
    assert FrameDecoder().feed(VECTORS[name]) == [EXPECTED[name]]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_encoder_reproduces_doc_vector_byte_for_byte(name: str) -> None:
    assert _encode(EXPECTED[name]) == VECTORS[name]


def test_firmware_version_renders_like_the_vendor_tool() -> None:
    assert str(FirmwareVersion(0x0100, 0x0204, 0x23022511)) == "V2.04.23022511"
    assert str(FirmwareVersion(0x0100, 0x0102, 0x22062416)) == "V1.02.22062416"


def test_all_vectors_back_to_back_decode_in_order_one_byte_at_a_time() -> None:
    decoder = FrameDecoder()
    stream = b"".join(VECTORS[name] for name in EXPECTED)
    out: list[Item] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == list(EXPECTED.values())
    assert decoder.stats.rejected == 0


# --- property tests --------------------------------------------------------------------------

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)


@st.composite
def engineering(draw: st.DrawFn) -> Engineering:
    n = draw(st.integers(0, 8))
    m = draw(st.integers(0, 8))
    return Engineering(
        n,
        m,
        tuple(draw(st.lists(u8, min_size=n + 1, max_size=n + 1))),
        tuple(draw(st.lists(u8, min_size=m + 1, max_size=m + 1))),
        draw(st.binary(max_size=4)),
    )


reports = st.builds(
    Report,
    st.sampled_from(TargetState),
    u16,
    u8,
    u16,
    u8,
    u16,
    st.none() | engineering(),
)
gate = st.integers(0, 8)
commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(EnableConfiguration),
    st.builds(EndConfiguration),
    st.builds(SetMaxGates, gate, gate, u16),
    st.builds(ReadParameters),
    st.builds(EnableEngineering),
    st.builds(CloseEngineering),
    st.builds(
        SetGateSensitivity, gate | st.just(ALL_GATES), st.integers(0, 100), st.integers(0, 100)
    ),
    st.builds(ReadFirmwareVersion),
    st.builds(FactoryReset),
    st.builds(Restart),
)
acks = st.one_of(
    st.builds(Ack, st.sampled_from(CommandWord), st.integers(1, 0xFFFF)),
    st.builds(Ack, st.just(0x00FF), st.just(0), st.builds(ConfigurationInfo, u16, u16)),
    st.builds(
        Ack,
        st.just(0x00A0),
        st.just(0),
        st.builds(FirmwareVersion, u16, u16, st.integers(0, 0xFFFFFFFF)),
    ),
    st.builds(
        Ack,
        st.just(0x0061),
        st.just(0),
        st.builds(
            Parameters,
            u8,
            u8,
            u8,
            st.lists(u8, min_size=9, max_size=9).map(tuple),
            st.lists(u8, min_size=9, max_size=9).map(tuple),
            u16,
        ),
    ),
)
items = st.one_of(reports, commands, acks)


@given(reports)
def test_report_round_trips(report: Report) -> None:
    assert FrameDecoder().feed(encode_report(report)) == [report]


@given(commands)
def test_command_round_trips(command: Command) -> None:
    assert FrameDecoder().feed(encode_command(command)) == [command]


@given(acks)
def test_ack_round_trips(ack: Ack) -> None:
    assert FrameDecoder().feed(encode_ack(ack)) == [ack]


@given(st.lists(items, max_size=8), st.lists(st.integers(1, 40), min_size=1))
def test_any_chunking_yields_the_same_items(sequence: list[Item], cuts: list[int]) -> None:
    stream = b"".join(_encode(i) for i in sequence)
    decoder = FrameDecoder()
    out: list[Item] = []
    pos = 0
    for size in cuts * (len(stream) // max(1, min(cuts)) + 1):
        if pos >= len(stream):
            break
        out += decoder.feed(stream[pos : pos + size])
        pos += size
    assert out == sequence


# Noise without any header byte cannot fake a frame start, so the count is exact.
noise = st.binary(min_size=1, max_size=200).map(
    lambda b: bytes(x for x in b if x not in (0xF4, 0xFD)) or b"\x00"
)


@given(noise, reports, noise)
def test_garbage_around_a_report_is_one_reject_and_the_report_survives(
    before: bytes, report: Report, after: bytes
) -> None:
    decoder = FrameDecoder()
    out = decoder.feed(before + encode_report(report) + after + encode_report(report))
    assert [i for i in out if not isinstance(i, Rejected)] == [report, report]
    assert decoder.stats.by_reason["garbage"] == 2


@given(reports, st.data())
def test_truncated_frame_is_rejected_and_the_next_frame_still_decodes(
    report: Report, data: st.DataObject
) -> None:
    wire = encode_report(report)
    cut = data.draw(st.integers(7, len(wire) - 1))
    decoder = FrameDecoder()
    out = decoder.feed(wire[:cut] + wire)
    assert out[-1] == report
    assert all(isinstance(i, Rejected) for i in out[:-1])
    assert decoder.stats.rejected == 1


@given(st.binary(max_size=600))
def test_random_bytes_never_raise_and_the_buffer_stays_bounded(blob: bytes) -> None:
    decoder = FrameDecoder()
    for i in range(0, len(blob), 17):
        for item in decoder.feed(blob[i : i + 17]):
            if isinstance(item, Rejected):
                assert len(item.raw) <= MAX_FRAME_LEN
        assert len(decoder._buf) <= MAX_FRAME_LEN


def test_oversized_length_is_rejected_without_waiting_for_the_bytes() -> None:
    decoder = FrameDecoder()
    report = Report(TargetState.MOVING, 100, 50, 0, 0, 100)
    out = decoder.feed(b"\xf4\xf3\xf2\xf1\xff\x7f" + encode_report(report))
    assert out == [Rejected("bad_length", b"\xf4\xf3\xf2\xf1\xff\x7f"), report]


def test_corrupted_report_markers_are_rejected_by_reason() -> None:
    good = bytearray(encode_report(Report(TargetState.MOVING, 100, 50, 0, 0, 100)))
    bad_head, bad_tail, bad_type, bad_state = (bytearray(good) for _ in range(4))
    bad_head[7] = 0xAB
    bad_tail[-6] = 0x56
    bad_type[6] = 0x07
    bad_state[8] = 0x09
    decoder = FrameDecoder()
    out = decoder.feed(bytes(bad_head + bad_tail + bad_type + bad_state + good))
    assert [i.reason for i in out if isinstance(i, Rejected)] == [
        "bad_head",
        "bad_tail",
        "unknown_type",
        "bad_value",
    ]
    assert out[-1] == Report(TargetState.MOVING, 100, 50, 0, 0, 100)


def test_unknown_command_word_is_rejected_but_an_unknown_ack_is_kept_raw() -> None:
    decoder = FrameDecoder()
    unknown_cmd = b"\xfd\xfc\xfb\xfa\x02\x00\x77\x00\x04\x03\x02\x01"
    bluetooth_ack = b"\xfd\xfc\xfb\xfa\x06\x00\xa4\x01\x00\x00\x01\x00\x04\x03\x02\x01"
    out = decoder.feed(unknown_cmd + bluetooth_ack)
    assert out[0] == Rejected("unknown_command", unknown_cmd)
    assert out[1] == Ack(0x00A4, 0, None, b"\x01\x00")


def test_command_values_are_range_checked() -> None:
    with pytest.raises(ValueError):
        SetMaxGates(9, 8, 5)
    with pytest.raises(ValueError):
        SetGateSensitivity(3, 101, 0)
