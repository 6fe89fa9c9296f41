"""Shuttle boarding decided from the snapshot alone: reserved, walk-on, full, unknown, no trip."""

from __future__ import annotations

from edge.boarding import SIGNALS, BoardingBook, service_hour, stop_at
from edge.snapshot import SnapshotView
from firmware_bridge.deskunit import LedPattern
from ruang import contract

from .snapshots import body

T0 = 1_795_000_000.0  # first departure of trip K1-0715
ALICE, BOB, CAROL, DAN = "04A1B2C3", "04B1B2C3", "04C1B2C3", "04D1B2C3"
STOPS = (
    contract.SnapshotStop(stop="HOUSING-A", lat=-0.9900, lon=116.6900),
    contract.SnapshotStop(stop="KIPP-1", lat=-0.9740, lon=116.7040),
)


def view(*, capacity: int = 3, reserved: int = 1, badges: tuple[str, ...] = ()) -> SnapshotView:
    people = {ALICE: "p-alice", BOB: "p-bob", CAROL: "p-carol", DAN: "p-dan"}
    return SnapshotView.of(
        body(
            now=T0 - 3600,
            vehicle=contract.SnapshotVehicle(vehicle="shuttle-07", kind="shuttle", capacity=40),
            badges=tuple(
                contract.SnapshotBadge(
                    badge=b, person=p, valid_until=T0 + 100 if b == DAN else None
                )
                for b, p in people.items()
                if not badges or b in badges
            ),
            trips=(
                contract.SnapshotTrip(
                    trip="K1-0715",
                    service_date="20261207",
                    start=T0,
                    end=T0 + 1800,
                    capacity=capacity,
                    reserved=reserved,
                    stops=STOPS,
                ),
                contract.SnapshotTrip(
                    trip="K1-0815",
                    service_date="20261207",
                    start=T0 + 3600,
                    end=T0 + 5400,
                    capacity=capacity,
                    reserved=0,
                ),
            ),
            seats=(
                contract.SnapshotSeat(
                    id="r-1",
                    person="p-alice",
                    trip="K1-0715",
                    service_date="20261207",
                    from_stop="HOUSING-A",
                ),
            ),
        )
    )


def book(**kw: object) -> BoardingBook:
    b = BoardingBook()
    b.snapshot = view(**kw)  # type: ignore[arg-type]
    return b


AT_HOUSING = (-0.99001, 116.69002)


def test_reserved_rider_boards_with_her_reservation_at_the_stop_of_the_fix() -> None:
    d = book().tap(ALICE, T0 - 60, AT_HOUSING)
    assert (d.allowed, d.reason, d.reservation) == (True, "reserved", "r-1")
    assert (d.trip, d.service_date, d.stop, d.person) == (
        "K1-0715",
        "20261207",
        "HOUSING-A",
        "p-alice",
    )
    assert d.signal == SIGNALS["reserved"] and d.signal.led.g > 0 and d.signal.led.r == 0


def test_walk_ons_fill_the_free_places_then_the_trip_is_full() -> None:
    b = book(capacity=3, reserved=1)
    first, second = b.tap(BOB, T0, None), b.tap(CAROL, T0 + 1, None)
    assert [first.reason, second.reason] == ["walk_on", "walk_on"]
    assert b.free_places(b.running(T0 + 2)) == 0  # type: ignore[arg-type]
    full = b.tap(DAN, T0 + 2, None)
    assert (full.allowed, full.reason) == (False, "full")
    assert full.signal.led.pattern == LedPattern.BLINK and full.signal.led.r == 255
    # The reserved seat is still there for its holder.
    assert b.tap(ALICE, T0 + 3, None).reason == "reserved"


def test_a_second_tap_by_a_rider_aboard_is_answered_but_takes_no_second_place() -> None:
    b = book(capacity=3, reserved=1)
    first = b.tap(BOB, T0, None)
    again = b.tap(BOB, T0 + 30, None)
    assert (again.allowed, again.reason, again.repeat) == (True, "walk_on", True)
    assert not first.repeat
    assert b.walk_ons[("K1-0715", "20261207")] == 1


def test_unknown_and_expired_badges_are_refused() -> None:
    b = book()
    unknown = b.tap("DEADBEEF", T0, None)
    assert (unknown.allowed, unknown.reason, unknown.person) == (False, "unknown_badge", None)
    expired = b.tap(DAN, T0 + 101, None)
    assert expired.reason == "unknown_badge"
    assert unknown.signal.beep.count == 3


def test_no_trip_between_trips_and_before_the_boarding_window() -> None:
    b = book()
    # The first trip's window: 10 min early .. 30 min after its last arrival.
    assert b.tap(BOB, T0 - 601, None).reason == "no_trip"
    assert b.tap(BOB, T0 - 599, None).trip == "K1-0715"
    assert b.running(T0 + 1800 + 1799) is not None
    # Where windows overlap, the trip that starts later is the one boarding.
    assert b.running(T0 + 3000) is not None and b.running(T0 + 3000).trip == "K1-0815"  # type: ignore[union-attr]
    nothing = b.tap(CAROL, T0 + 5400 + 1801, None)
    assert (nothing.allowed, nothing.reason, nothing.trip) == (False, "no_trip", None)


def test_without_a_snapshot_every_badge_is_unknown() -> None:
    assert BoardingBook().tap(ALICE, T0, None).reason == "unknown_badge"


def test_a_pool_car_node_refuses_boarding() -> None:
    b = BoardingBook()
    v = view()
    b.snapshot = SnapshotView.of(
        v.body.model_copy(
            update={
                "vehicle": contract.SnapshotVehicle(vehicle="car-3", kind="poolcar", capacity=4)
            }
        )
    )
    assert b.tap(ALICE, T0, None).reason == "not_allowed"


def test_stop_is_the_nearest_within_the_radius_else_unknown() -> None:
    trip = view().body.trips[0]
    assert stop_at(trip, (-0.97405, 116.70395)) == "KIPP-1"
    assert stop_at(trip, (-0.9820, 116.6970)) is None  # between stops
    assert stop_at(trip, None) is None
    assert stop_at(view().body.trips[1], AT_HOUSING) is None  # a trip without stops


def test_counts_survive_a_restart_and_forget_trips_that_left_the_snapshot() -> None:
    b = book(capacity=3, reserved=1)
    b.tap(BOB, T0, None)
    saved = b.state()
    again = book(capacity=3, reserved=1)
    again.restore(saved)
    assert again.walk_ons == {("K1-0715", "20261207"): 1}
    assert again.tap(BOB, T0 + 10, None).repeat
    assert again.tap(CAROL, T0 + 11, None).reason == "walk_on"
    assert again.tap(DAN, T0 + 12, None).reason == "full"
    # A newer snapshot without the trip drops its counts.
    again.snapshot = SnapshotView.of(view().body.model_copy(update={"trips": ()}))
    assert again.walk_ons == {}
    again.restore({"walk_ons": "garbage"})
    assert again.walk_ons == {}


def test_service_hour_is_local_wita() -> None:
    # 2026-12-07 00:30 UTC is 08:30 in Asia/Makassar (UTC+8).
    assert service_hour(1_796_603_400.0) == 8
