"""The node's signed snapshot: verified, versioned, persisted, and what taps decide from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.decisions import (
    LED_BOOKED_BY_OTHER,
    LED_CHECKED_IN,
    LED_OFF,
    LED_REFUSED,
    LED_UNAVAILABLE,
    DeskBook,
)
from edge.snapshot import (
    EARLY_CHECKIN_S,
    SnapshotError,
    SnapshotStore,
    SnapshotView,
    load_public_key,
)
from ruang import contract

from .snapshots import body, keypair, sign

T0 = 1_795_000_000.0
ALICE, BOB = "04A1B2C3", "0411223344AABB"


def office(version: int = 1) -> contract.SnapshotBody:
    return body(
        version,
        now=T0,
        desks=(
            contract.SnapshotDesk(desk="D1", mode="reservable"),
            contract.SnapshotDesk(desk="D2", mode="drop_in"),
            contract.SnapshotDesk(desk="D3", mode="unavailable"),
            contract.SnapshotDesk(desk="D4", mode="assigned", assigned_person="p-bob"),
        ),
        bookings=(
            contract.SnapshotBooking(
                id="bk-1", desk="D1", person="p-alice", start=T0 + 3600, end=T0 + 7200
            ),
            contract.SnapshotBooking(
                id="bk-2", desk="D1", person="p-bob", start=T0 + 7200, end=T0 + 9000
            ),
        ),
        badges=(
            contract.SnapshotBadge(badge=ALICE, person="p-alice"),
            contract.SnapshotBadge(badge=BOB, person="p-bob", valid_until=T0 + 8000),
        ),
    )


def book_with(snapshot: contract.SnapshotBody) -> DeskBook:
    book = DeskBook()
    book.snapshot = SnapshotView.of(snapshot)
    return book


def test_store_accepts_signed_newer_snapshot_and_persists_it(tmp_path: Path) -> None:
    key, pem = keypair()
    store = SnapshotStore(tmp_path / "snap.json", load_public_key(pem))
    store.apply(sign(key, "n1", office(1)))
    store.apply(sign(key, "n1", office(2)))
    again = SnapshotStore(tmp_path / "snap.json", load_public_key(pem))
    again.load()
    assert again.current is not None and again.current.version == 2


def test_store_refuses_forged_or_older_snapshots(tmp_path: Path) -> None:
    key, pem = keypair()
    other, _ = keypair()
    store = SnapshotStore(tmp_path / "snap.json", load_public_key(pem))
    store.apply(sign(key, "n1", office(5)))
    with pytest.raises(SnapshotError, match="bad signature"):
        store.apply(sign(other, "n1", office(6)))
    with pytest.raises(SnapshotError, match="not newer"):
        store.apply(sign(key, "n1", office(5)))
    tampered = sign(key, "n1", office(7)).model_copy(update={"body": office(8)})
    with pytest.raises(SnapshotError, match="bad signature"):
        store.apply(tampered)
    assert store.current is not None and store.current.version == 5 and store.rejected == 3


def test_damaged_stored_snapshot_is_ignored_with_a_reason(tmp_path: Path) -> None:
    _, pem = keypair()
    (tmp_path / "snap.json").write_text('{"half": ')
    store = SnapshotStore(tmp_path / "snap.json", load_public_key(pem))
    store.load()
    assert store.current is None and store.last_error


def test_holder_taps_into_their_booking_within_the_early_window() -> None:
    book = book_with(office())
    d = book.tap("D1", ALICE, T0 + 3600 - EARLY_CHECKIN_S + 1)
    assert (d.outcome, d.booking, d.person, d.led) == ("checkin", "bk-1", "p-alice", LED_CHECKED_IN)


def test_tap_on_desk_booked_by_someone_else_is_refused_amber() -> None:
    d = book_with(office()).tap("D1", BOB, T0 + 4000)
    assert (d.outcome, d.reason, d.led) == ("refused", "booked_by_other", LED_BOOKED_BY_OTHER)


def test_running_booking_wins_over_the_next_ones_early_window() -> None:
    view = SnapshotView.of(office())
    assert view.booking_at("D1", T0 + 7200 - 60).id == "bk-1"  # type: ignore[union-attr]
    assert view.booking_at("D1", T0 + 7200).id == "bk-2"  # type: ignore[union-attr]
    assert view.booking_at("D1", T0 + 9000) is None


def test_unknown_and_expired_badges_are_refused_red() -> None:
    book = book_with(office())
    assert book.tap("D2", "DEADBEEF", T0).reason == "unknown_badge"
    expired = book.tap("D2", BOB, T0 + 8001)
    assert (expired.reason, expired.led) == ("unknown_badge", LED_REFUSED)


def test_free_drop_in_desk_is_claimed_and_tap_again_checks_out() -> None:
    book = book_with(office())
    claim = book.tap("D2", ALICE, T0)
    assert claim.outcome == "checkin" and claim.booking is None
    out = book.tap("D2", ALICE, T0 + 60)
    assert (out.outcome, out.led) == ("checkout", LED_OFF)


def test_unavailable_and_other_peoples_assigned_desks_are_refused() -> None:
    book = book_with(office())
    assert (book.tap("D3", ALICE, T0).reason, book.tap("D3", ALICE, T0).led) == (
        "desk_unavailable",
        LED_UNAVAILABLE,
    )
    assert book.tap("D4", ALICE, T0).reason == "assigned_to_other"
    assert book.tap("D4", BOB, T0).outcome == "checkin"


def test_occupied_desk_refuses_a_second_person() -> None:
    book = book_with(office())
    book.tap("D2", ALICE, T0)
    assert book.tap("D2", BOB, T0 + 1).reason == "desk_occupied"
