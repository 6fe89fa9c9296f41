"""BLE advert codec: the hex vectors in docs/devices/ble.md, round-trips, garbage tolerance."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.ble_adverts import (
    APPLE_COMPANY_ID,
    EDDYSTONE_SERVICE_UUID,
    RUANG_COMPANY_ID,
    Advert,
    EddystoneEid,
    EddystoneTlm,
    EddystoneUid,
    Frame,
    IBeacon,
    Rejected,
    RuangButton,
    decode_advert,
    decode_eddystone,
    encode_eddystone,
    encode_ibeacon,
    encode_ruang,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "devices" / "ble.md"


def _doc_vectors() -> dict[str, tuple[str, bytes]]:
    block = re.search(r"```ble-vectors\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None, "docs/devices/ble.md lost its ble-vectors block"
    vectors: dict[str, tuple[str, bytes]] = {}
    for line in block.group(1).splitlines():
        if line.strip():
            name, source, *hex_bytes = line.split()
            vectors[name] = (source, bytes.fromhex("".join(hex_bytes)))
    return vectors


VECTORS = _doc_vectors()


def _decode(source: str, payload: bytes) -> Advert:
    kind, key = source.split(":")
    if kind == "mfr":
        return decode_advert("C0:00:00:00:00:01", -60, {int(key, 16): payload}, {})
    return decode_advert("C0:00:00:00:00:01", -60, {}, {key: payload})


EXPECTED: dict[str, Frame] = {
    "ibeacon": IBeacon(bytes.fromhex("e2c56db5dffb48d2b060d0f5a71096e0"), 1, 7, -59),
    "eddystone-uid": EddystoneUid(-20, b"RuangBLE\x00\x01", bytes.fromhex("000000000042")),
    "eddystone-uid-18": EddystoneUid(-20, b"RuangBLE\x00\x01", bytes.fromhex("000000000042")),
    "eddystone-tlm": EddystoneTlm(3000, 21.5, 258, 3600),
    "eddystone-tlm-cold": EddystoneTlm(2100, -0.5, 1, 10),
    "eddystone-eid": EddystoneEid(-20, bytes.fromhex("f124cb881fd66425")),
    "ruang-button": RuangButton(0x01, 7),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_doc_vector_decodes_to_the_documented_frame(name: str) -> None:
    source, payload = VECTORS[name]
    advert = _decode(source, payload)
    assert advert.rejected == ()
    assert advert.frames == (EXPECTED[name],)


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "eddystone-uid-18"])
def test_encoder_reproduces_the_doc_vector_bytes(name: str) -> None:
    frame = EXPECTED[name]
    if isinstance(frame, IBeacon):
        assert encode_ibeacon(frame) == VECTORS[name][1]
    elif isinstance(frame, RuangButton):
        assert encode_ruang(frame) == VECTORS[name][1]
    else:
        assert encode_eddystone(frame) == VECTORS[name][1]


@pytest.mark.parametrize("name", sorted(n for n in VECTORS if n.startswith("bad-")))
def test_malformed_doc_vector_is_rejected_with_a_reason(name: str) -> None:
    advert = _decode(*VECTORS[name])
    assert advert.frames == ()
    assert len(advert.rejected) == 1 and advert.rejected[0].reason


def test_every_doc_vector_is_covered_by_a_test() -> None:
    assert set(VECTORS) == set(EXPECTED) | {n for n in VECTORS if n.startswith("bad-")}


def test_button_pressed_flag_is_bit_zero() -> None:
    assert RuangButton(0x01, 1).pressed and not RuangButton(0x02, 1).pressed


def test_other_apple_adverts_and_eddystone_url_are_ignored_not_rejected() -> None:
    # An iPhone's "nearby" advert (type 0x10) and an Eddystone-URL are everyday noise.
    advert = decode_advert(
        "40:00:00:00:00:01",
        -70,
        {APPLE_COMPANY_ID: bytes.fromhex("1005031c2a8f2b")},
        {EDDYSTONE_SERVICE_UUID: bytes.fromhex("10ec0367676c")},
    )
    assert advert.frames == () and advert.rejected == ()


def test_short_form_eddystone_uuid_is_recognised() -> None:
    payload = VECTORS["eddystone-eid"][1]
    assert decode_advert("a", 0, {}, {"feaa": payload}).frames == (EXPECTED["eddystone-eid"],)


def test_combined_advert_yields_all_its_frames_and_first_finds_by_type() -> None:
    advert = decode_advert(
        "C0:00:00:00:00:01",
        -50,
        {APPLE_COMPANY_ID: VECTORS["ibeacon"][1], RUANG_COMPANY_ID: VECTORS["ruang-button"][1]},
        {EDDYSTONE_SERVICE_UUID: VECTORS["eddystone-tlm"][1]},
    )
    assert advert.first(RuangButton) == RuangButton(1, 7)
    assert advert.first(EddystoneTlm) == EXPECTED["eddystone-tlm"]
    assert advert.first(EddystoneUid) is None
    assert len(advert.frames) == 3


def test_tlm_without_temperature_sensor_decodes_to_none() -> None:
    frame = decode_eddystone(bytes.fromhex("20000bb88000000000010000000a"))
    assert isinstance(frame, EddystoneTlm) and frame.temperature_c is None
    assert encode_eddystone(frame) == bytes.fromhex("20000bb88000000000010000000a")


# --- properties -----------------------------------------------------------------------------

int8 = st.integers(-128, 127)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

ibeacons = st.builds(IBeacon, st.binary(min_size=16, max_size=16), u16, u16, int8)
uids = st.builds(
    EddystoneUid, int8, st.binary(min_size=10, max_size=10), st.binary(min_size=6, max_size=6)
)
tlms = st.builds(
    EddystoneTlm,
    u16,
    st.one_of(st.none(), st.integers(-0x7FFF, 0x7FFF).map(lambda raw: raw / 256)),
    u32,
    u32,
)
eids = st.builds(EddystoneEid, int8, st.binary(min_size=8, max_size=8))
buttons = st.builds(RuangButton, st.integers(0, 255), st.integers(0, 255))


@given(ibeacons)
def test_ibeacon_round_trips(frame: IBeacon) -> None:
    advert = decode_advert("x", -1, {APPLE_COMPANY_ID: encode_ibeacon(frame)}, {})
    assert advert.frames == (frame,)


@given(st.one_of(uids, tlms, eids))
def test_eddystone_frames_round_trip(frame: EddystoneUid | EddystoneTlm | EddystoneEid) -> None:
    assert decode_eddystone(encode_eddystone(frame)) == frame


@given(buttons)
def test_button_round_trips(frame: RuangButton) -> None:
    advert = decode_advert("x", -1, {RUANG_COMPANY_ID: encode_ruang(frame)}, {})
    assert advert.frames == (frame,)


@given(
    st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=40), max_size=4),
    st.dictionaries(
        st.sampled_from([EDDYSTONE_SERVICE_UUID, "feaa", "0000180f-0000-1000-8000-00805f9b34fb"]),
        st.binary(max_size=40),
        max_size=3,
    ),
    st.text(max_size=20),
    st.integers(-200, 200),
)
def test_garbage_never_raises_and_every_result_is_a_frame_or_rejection(
    manufacturer: dict[int, bytes], service: dict[str, bytes], address: str, rssi: int
) -> None:
    advert = decode_advert(address, rssi, manufacturer, service)
    assert all(isinstance(r, Rejected) for r in advert.rejected)
    assert all(not isinstance(f, Rejected) for f in advert.frames)
