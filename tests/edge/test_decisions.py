"""Local desk decisions: tap to check in, tap again to check out, others refused."""

from __future__ import annotations

from edge.decisions import LED_CHECKED_IN, LED_OFF, LED_REFUSED, DeskBook


def test_tap_on_free_desk_checks_in_with_green_led() -> None:
    book = DeskBook()
    d = book.tap("D1", "04A1B2C3", now=10.0)
    assert (d.outcome, d.led) == ("checkin", LED_CHECKED_IN)
    assert book.occupant("D1") is not None and book.occupant("D1").badge == "04A1B2C3"  # type: ignore[union-attr]


def test_second_tap_by_same_badge_checks_out_and_turns_led_off() -> None:
    book = DeskBook()
    book.tap("D1", "04A1B2C3", now=10.0)
    d = book.tap("D1", "04A1B2C3", now=20.0)
    assert (d.outcome, d.led) == ("checkout", LED_OFF)
    assert book.occupant("D1") is None


def test_tap_by_other_badge_on_occupied_desk_is_refused_and_keeps_occupant() -> None:
    book = DeskBook()
    book.tap("D1", "04A1B2C3", now=10.0)
    d = book.tap("D1", "0411223344", now=11.0)
    assert d.outcome == "refused" and d.led == LED_REFUSED and d.reason
    assert d.steady_led == LED_CHECKED_IN
    assert book.occupant("D1").badge == "04A1B2C3"  # type: ignore[union-attr]


def test_desks_are_independent() -> None:
    book = DeskBook()
    book.tap("D1", "04A1B2C3", now=1.0)
    assert book.tap("D2", "0411223344", now=2.0).outcome == "checkin"
    assert book.steady_led("D1") == LED_CHECKED_IN and book.steady_led("D3") == LED_OFF


def test_a_booking_checked_in_elsewhere_shows_green_and_a_plain_booking_shows_booked() -> None:
    from edge.decisions import LED_BOOKED
    from edge.snapshot import SnapshotView
    from ruang import contract
    from tests.edge.snapshots import body

    now = 1_795_000_000.0
    book = DeskBook()
    book.snapshot = SnapshotView.of(
        body(
            now=now,
            bookings=[
                contract.SnapshotBooking(
                    id="b1",
                    desk="D1",
                    person="p-ayu",
                    start=now - 60,
                    end=now + 3600,
                    status="checked_in",
                ),
                contract.SnapshotBooking(
                    id="b2", desk="D2", person="p-budi", start=now - 60, end=now + 3600
                ),
            ],
        )
    )
    # D1 was checked in by QR code on a phone: the person is there, so green.
    assert book.steady_led("D1", now) == LED_CHECKED_IN
    assert book.steady_led("D2", now) == LED_BOOKED
    assert book.steady_led("D3", now) == LED_OFF
