"""NMEA codec: the doc's example sentences, round-trips, and garbage handling."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.nmea import (
    GGA,
    MAX_SENTENCE_LEN,
    RMC,
    VTG,
    Item,
    LineDecoder,
    OtherSentence,
    Rejected,
    checksum,
    encode,
    encode_sentence,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "devices" / "gps.md"
KINDS = {"gga": GGA, "rmc": RMC, "vtg": VTG}


def _vectors() -> dict[str, tuple[str, dict[str, str]]]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- vectors:begin -->(.*?)<!-- vectors:end -->", text, re.S)
    assert block, "vector table markers missing from docs/devices/gps.md"
    rows = {}
    for line in block.group(1).strip().splitlines()[2:]:
        name, sentence, decoded = (c.strip() for c in line.strip().strip("|").split("|"))
        rows[name] = (sentence, dict(pair.split("=", 1) for pair in decoded.split()))
    return rows


VECTORS = _vectors()


def _render(value: object) -> str:
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, dt.time):
        return value.isoformat()
    return str(value)


def test_doc_lists_the_three_classic_examples() -> None:
    assert {"gga", "rmc", "vtg"} <= set(VECTORS)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_doc_sentence_checksum_is_the_xor_of_the_body(name: str) -> None:
    sentence, _ = VECTORS[name]
    body, given_sum = sentence[1:].split("*")
    assert checksum(body) == int(given_sum, 16)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_doc_sentence_decodes_to_the_listed_values(name: str) -> None:
    sentence, expected = VECTORS[name]
    (item,) = LineDecoder().feed(sentence.encode() + b"\r\n")
    assert isinstance(item, KINDS[name.split("_")[0]])
    actual = {key: _render(getattr(item, key)) for key in expected}
    expected_rendered = {
        key: _render(float(v)) if re.fullmatch(r"-?\d+\.\d+", v) else v
        for key, v in expected.items()
    }
    assert actual == expected_rendered


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_doc_sentence_survives_re_encoding(name: str) -> None:
    sentence, _ = VECTORS[name]
    (item,) = LineDecoder().feed(sentence.encode() + b"\r\n")
    assert isinstance(item, GGA | RMC | VTG)
    (again,) = LineDecoder().feed(encode(item))
    assert again == item


def test_rmc_knots_convert_to_kmh() -> None:
    (rmc,) = LineDecoder().feed(VECTORS["rmc"][0].encode() + b"\r\n")
    assert isinstance(rmc, RMC)
    assert rmc.speed_kmh == pytest.approx(22.4 * 1.852)


# --- property tests ----------------------------------------------------------------------------

times = (
    st.builds(dt.time, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.just(0))
    | st.none()
)
# Coordinates on the encoder's 1e-5 minute grid, so a round-trip is exact up to float noise.
lats = st.integers(-90 * 6_000_000, 90 * 6_000_000).map(lambda k: k / 6_000_000)
lons = st.integers(-180 * 6_000_000, 180 * 6_000_000).map(lambda k: k / 6_000_000)
talkers = st.sampled_from(["GP", "GN", "GL", "GA"])
tenths = st.integers(0, 9999).map(lambda k: k / 10)
hundredths = st.integers(0, 35999).map(lambda k: k / 100)


@st.composite
def ggas(draw: st.DrawFn) -> GGA:
    return GGA(
        draw(talkers),
        draw(times),
        draw(lats),
        draw(lons),
        draw(st.integers(0, 8)),
        draw(st.integers(0, 40) | st.none()),
        draw(st.integers(0, 9999).map(lambda k: k / 100) | st.none()),
        draw(st.integers(-4000, 90000).map(lambda k: k / 10) | st.none()),
    )


@st.composite
def rmcs(draw: st.DrawFn) -> RMC:
    return RMC(
        draw(talkers),
        draw(times),
        draw(st.booleans()),
        draw(lats),
        draw(lons),
        draw(tenths | st.none()),
        draw(hundredths | st.none()),
        draw(st.dates(dt.date(1980, 1, 1), dt.date(2079, 12, 31)) | st.none()),
        draw(st.integers(-1800, 1800).map(lambda k: k / 10) | st.none()),
        draw(st.sampled_from(["A", "D", "E", "N"]) | st.none()),
    )


@st.composite
def vtgs(draw: st.DrawFn) -> VTG:
    return VTG(
        draw(talkers),
        draw(hundredths | st.none()),
        draw(hundredths | st.none()),
        draw(tenths | st.none()),
        draw(tenths | st.none()),
        draw(st.sampled_from(["A", "D", "N"]) | st.none()),
    )


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, abs_tol=1e-9)
    return a == b


@given(st.one_of(ggas(), rmcs(), vtgs()))
def test_sentence_round_trips(sentence: GGA | RMC | VTG) -> None:
    wire = encode(sentence)
    assert len(wire) <= MAX_SENTENCE_LEN
    (decoded,) = LineDecoder().feed(wire)
    assert type(decoded) is type(sentence)
    for name in sentence.__slots__:
        assert _close(getattr(decoded, name), getattr(sentence, name)), name
    assert isinstance(decoded, GGA | RMC | VTG)
    assert encode(decoded) == wire


@given(st.lists(st.one_of(ggas(), rmcs(), vtgs()), max_size=6), st.integers(1, 30))
def test_any_chunking_yields_the_same_sentences(sentences: list[Item], size: int) -> None:
    stream = b"".join(encode(s) for s in sentences)  # type: ignore[arg-type]
    decoder = LineDecoder()
    out: list[Item] = []
    for i in range(0, len(stream), size):
        out += decoder.feed(stream[i : i + size])
    assert len(out) == len(sentences)
    assert decoder.stats.rejected == 0


@given(st.binary(max_size=400))
def test_random_bytes_never_raise_and_the_buffer_stays_bounded(blob: bytes) -> None:
    decoder = LineDecoder()
    for i in range(0, len(blob), 13):
        decoder.feed(blob[i : i + 13])
        assert len(decoder._pending) <= MAX_SENTENCE_LEN


@given(st.binary(min_size=1, max_size=60).filter(lambda b: b"$" not in b and b"\n" not in b))
def test_garbage_before_a_sentence_is_one_reject_and_the_sentence_survives(noise: bytes) -> None:
    sentence = VECTORS["gga"][0].encode() + b"\r\n"
    decoder = LineDecoder()
    out = decoder.feed(noise + sentence + sentence)
    good = [i for i in out if not isinstance(i, Rejected)]
    assert len(good) == 2
    assert decoder.stats.rejected == (1 if noise.strip() else 0)


def test_flipped_checksum_is_rejected_as_bad_checksum() -> None:
    decoder = LineDecoder()
    out = decoder.feed(b"$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*49\r\n")
    assert out == [Rejected("bad_checksum", b"$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*49")]


def test_missing_checksum_is_rejected_as_no_checksum() -> None:
    out = LineDecoder().feed(b"$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K\r\n")
    assert [i.reason for i in out if isinstance(i, Rejected)] == ["no_checksum"]


def test_sentence_cut_short_by_the_next_costs_only_itself() -> None:
    gga = VECTORS["gga"][0].encode()
    out = LineDecoder().feed(gga[:25] + gga + b"\r\n")
    assert [type(i) for i in out] == [Rejected, GGA]
    assert isinstance(out[0], Rejected) and out[0].reason == "no_checksum"


def test_line_over_82_characters_is_rejected_once_as_too_long() -> None:
    decoder = LineDecoder()
    body = "GPGGA," + "1" * 100
    long_line = f"${body}*{checksum(body):02X}".encode()
    out = decoder.feed(long_line[:50]) + decoder.feed(long_line[50:] + b"\r\n")
    out += decoder.feed(VECTORS["vtg"][0].encode() + b"\r\n")
    assert [i.reason for i in out if isinstance(i, Rejected)] == ["too_long"]
    assert isinstance(out[-1], VTG)


def test_non_ascii_and_malformed_fields_are_rejected_by_reason() -> None:
    bad_lat = encode_sentence(
        "GPGGA", "123519,48x7.038,N,01131.000,E,1,08,0.9,545.4,M,,M,,".split(",")
    )
    bad_addr = encode_sentence("GPGGAX", ["1"])
    out = LineDecoder().feed(b"\xff\xfe\r\n" + bad_lat + bad_addr + b"$GP\xc3\xa9*00\r\n")
    assert [i.reason for i in out if isinstance(i, Rejected)] == [
        "garbage",
        "bad_field",
        "bad_address",
        "garbage",
    ]


def test_unmodelled_sentences_pass_as_other() -> None:
    gsa = encode_sentence("GNGSA", ["A", "3", "01", "02", "", "", "1.0", "0.9", "0.5"])
    pubx = encode_sentence("PUBX", ["00", "x"])
    out = LineDecoder().feed(gsa + pubx)
    assert out == [
        OtherSentence("GN", "GSA", ("A", "3", "01", "02", "", "", "1.0", "0.9", "0.5")),
        OtherSentence("P", "UBX", ("00", "x")),
    ]
