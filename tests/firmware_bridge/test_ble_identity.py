"""Rotating badge identifiers: RPA resolution (spec sample data) and Ruang EID windows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.ble_identity import (
    EidMatch,
    EidResolver,
    RpaResolver,
    ah,
    compute_eid,
    eid_window,
    generate_rpa,
    is_rpa,
    resolve_rpa,
    rpa_matches,
)

# Bluetooth Core spec sample data for the random address hash function ah.
SPEC_IRK = bytes.fromhex("ec0234a357c8ad05341010a60a397d9b")
SPEC_PRAND = 0x708194
SPEC_HASH = 0x0DFBAA
SPEC_RPA = "70:81:94:0D:FB:AA"

SECRET = bytes(range(16))
T0 = 1_700_000_000.0
WINDOW = 512


def test_ah_matches_the_core_spec_sample_data() -> None:
    assert ah(SPEC_IRK, SPEC_PRAND) == SPEC_HASH


def test_spec_sample_address_resolves_with_its_irk() -> None:
    assert is_rpa(SPEC_RPA)
    assert rpa_matches(SPEC_IRK, SPEC_RPA)
    assert resolve_rpa(SPEC_RPA, {"other": bytes(16), "ana": SPEC_IRK}) == "ana"


def test_rpa_with_a_flipped_hash_bit_is_rejected() -> None:
    assert not rpa_matches(SPEC_IRK, "70:81:94:0D:FB:AB")


def test_rpa_does_not_resolve_with_another_irk() -> None:
    assert resolve_rpa(SPEC_RPA, {"budi": bytes(range(16))}) is None


def test_non_resolvable_addresses_are_never_matched() -> None:
    # Same low 46 bits, but tagged static random (0b11) / public-looking (0b00).
    assert not is_rpa("F0:81:94:0D:FB:AA") and not rpa_matches(SPEC_IRK, "F0:81:94:0D:FB:AA")
    assert not is_rpa("30:81:94:0D:FB:AA")
    assert not is_rpa("not an address") and not is_rpa("70:81:94:0D:FB")


@given(st.binary(min_size=16, max_size=16), st.integers(1, (1 << 22) - 2))
def test_generated_rpa_resolves_to_its_irk_only(irk: bytes, bits: int) -> None:
    address = generate_rpa(irk, (0b01 << 22) | bits)
    assert is_rpa(address)
    resolver = RpaResolver({"mine": irk, "other": bytes(a ^ 0xFF for a in irk)})
    assert resolver.resolve(address) == "mine"


def test_generated_rpa_without_prand_is_random_and_valid() -> None:
    first, second = generate_rpa(SPEC_IRK), generate_rpa(SPEC_IRK)
    assert first != second
    assert rpa_matches(SPEC_IRK, first) and rpa_matches(SPEC_IRK, second)


def test_generate_rpa_refuses_a_prand_without_the_rpa_tag() -> None:
    with pytest.raises(ValueError):
        generate_rpa(SPEC_IRK, 0xC08194)


# --- EID ------------------------------------------------------------------------------------


def test_eid_reference_vector_from_the_doc() -> None:
    assert eid_window(T0) == 3320312
    assert compute_eid(SECRET, T0) == bytes.fromhex("f124cb881fd66425")


def test_eid_changes_every_window_and_is_stable_within_one() -> None:
    start = eid_window(T0) * WINDOW
    assert compute_eid(SECRET, start) == compute_eid(SECRET, start + WINDOW - 1)
    assert compute_eid(SECRET, start) != compute_eid(SECRET, start + WINDOW)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_eid_from_current_or_neighbouring_window_is_accepted(offset: int) -> None:
    resolver = EidResolver({"ana": SECRET, "budi": bytes(16)})
    eid = compute_eid(SECRET, T0 + offset * WINDOW)
    assert resolver.resolve(eid, T0) == EidMatch("ana", offset)


@pytest.mark.parametrize("offset", [-3, -2, 2, 5])
def test_eid_outside_the_window_is_rejected_as_replay(offset: int) -> None:
    resolver = EidResolver({"ana": SECRET})
    recorded = compute_eid(SECRET, T0 + offset * WINDOW)
    assert resolver.resolve(recorded, T0) is None


def test_recorded_eid_stops_resolving_once_time_moves_on() -> None:
    resolver = EidResolver({"ana": SECRET})
    recorded = compute_eid(SECRET, T0)
    assert resolver.resolve(recorded, T0) is not None
    assert resolver.resolve(recorded, T0 + WINDOW) is not None  # skew allowance
    assert resolver.resolve(recorded, T0 + 2 * WINDOW) is None


def test_eid_of_an_unenrolled_secret_is_unknown() -> None:
    resolver = EidResolver({"ana": SECRET})
    assert resolver.resolve(compute_eid(b"someone else's key", T0), T0) is None


def test_rotation_exponent_sets_the_window_length() -> None:
    resolver = EidResolver({"ana": SECRET}, k=4)  # 16 s windows
    assert resolver.resolve(compute_eid(SECRET, T0, k=4), T0 + 16) is not None
    assert resolver.resolve(compute_eid(SECRET, T0, k=4), T0 + 40) is None


def test_enrolling_a_badge_later_makes_its_eids_resolve() -> None:
    resolver = EidResolver({})
    eid = compute_eid(SECRET, T0)
    assert resolver.resolve(eid, T0) is None
    resolver.enroll("ana", SECRET)
    assert resolver.resolve(eid, T0) == EidMatch("ana", 0)
