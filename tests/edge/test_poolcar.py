"""Pool-car pick-up and return by tap, decided from the snapshot's approved car bookings."""

from __future__ import annotations

from edge.poolcar import PoolCarBook
from edge.snapshot import SnapshotView
from ruang import contract

from .snapshots import body

T0 = 1_795_000_000.0
ALICE, BOB = "04A1B2C3", "04B1B2C3"


def book() -> PoolCarBook:
    b = PoolCarBook()
    b.snapshot = SnapshotView.of(
        body(
            now=T0 - 3600,
            vehicle=contract.SnapshotVehicle(vehicle="car-03", kind="poolcar", capacity=4),
            badges=(
                contract.SnapshotBadge(badge=ALICE, person="p-alice"),
                contract.SnapshotBadge(badge=BOB, person="p-bob"),
            ),
            car_bookings=(
                contract.SnapshotCarBooking(id="pc-17", person="p-alice", start=T0, end=T0 + 7200),
                contract.SnapshotCarBooking(
                    id="pc-18", person="p-bob", start=T0 + 7200, end=T0 + 9000
                ),
            ),
        )
    )
    return b


def test_booked_person_picks_up_in_her_window_and_returns_it() -> None:
    b = book()
    pickup = b.tap(ALICE, T0 - 600)
    assert (pickup.action, pickup.reason, pickup.booking) == ("pickup", "booked", "pc-17")
    assert pickup.signal.led.g > 0
    back = b.tap(ALICE, T0 + 3600)
    assert (back.action, back.reason, back.booking) == ("return", "returned", "pc-17")
    assert b.holder is None


def test_too_early_no_booking_and_unknown_badges_are_refused() -> None:
    b = book()
    assert b.tap(ALICE, T0 - 901).reason == "no_booking"
    assert b.tap("DEADBEEF", T0).reason == "unknown_badge"
    assert b.tap(BOB, T0).reason == "no_booking"  # his booking starts later


def test_someone_else_cannot_take_a_car_that_is_out_and_a_late_return_is_marked() -> None:
    b = book()
    b.tap(ALICE, T0)
    other = b.tap(BOB, T0 + 7000)
    assert (other.action, other.reason, other.person) == ("refused", "in_use", "p-bob")
    late = b.tap(ALICE, T0 + 7300)
    assert (late.action, late.reason) == ("return", "returned_late")
    assert b.tap(BOB, T0 + 7400).action == "pickup"


def test_the_holder_survives_a_restart() -> None:
    b = book()
    b.tap(ALICE, T0)
    again = book()
    again.restore(b.state())
    assert again.tap(ALICE, T0 + 60).action == "return"
    again.restore({"badge": "x"})  # damaged state: nobody holds the car
    assert again.holder is None
