"""Rider scenarios: reproducible, every outcome present; a parked GNSS receiver; a door reader."""

from __future__ import annotations

import pytest

from firmware_bridge.deskunit import Capability
from simulators.gps import distance_m
from simulators.riders import (
    ParkedGps,
    RiderTap,
    StopPlace,
    badge_of,
    door_reader,
    play,
    seeded_day,
    taps_along,
)

STOPS = (StopPlace("A", -0.9900, 116.6900), StopPlace("B", -0.9820, 116.6970),
         StopPlace("C", -0.9740, 116.7040))  # fmt: skip
TRIPS = ((0.0, 1200.0, ("A", "B", "C")), (1800.0, 3000.0, ("A", "B", "C")))


def test_a_seeded_day_is_reproducible_and_has_unknown_badges_and_a_repeat_tap() -> None:
    day = seeded_day(3, TRIPS, riders=12)
    assert day == seeded_day(3, TRIPS, riders=12)
    assert day != seeded_day(4, TRIPS, riders=12)
    assert [t.at_s for t in day] == sorted(t.at_s for t in day)
    badges = [t.badge for t in day]
    assert {badge_of(i) for i in range(12)} <= set(badges)
    assert sum(1 for b in badges if b.startswith("DEAD")) == 2
    assert len(badges) - len(set(badges)) == 1  # one rider taps twice
    # Riders board at a stop of their trip, never at its last one.
    assert {t.stop for t in day} <= {"A", "B"}
    assert all(0 <= t.at_s <= 3000 for t in day)


def test_badges_are_four_byte_upper_case_uids() -> None:
    assert badge_of(0) == "04000000" and badge_of(255) == "040000FF"
    assert len(bytes.fromhex(badge_of(70000))) == 4


async def test_a_parked_receiver_reports_the_stop_it_is_parked_at() -> None:
    parked = ParkedGps(STOPS, time_factor=50)
    for stop in STOPS:
        lat, lon = parked.park(stop.stop)
        assert distance_m((lat, lon), (stop.lat, stop.lon)) < 1.0
    between = parked.park(None)
    assert min(distance_m(between, (s.lat, s.lon)) for s in STOPS) > 400
    with pytest.raises(ValueError):
        ParkedGps(STOPS[:1])


async def test_play_taps_each_badge_on_the_reader_in_time_order_at_its_stop() -> None:
    places: list[str | None] = []
    clock: list[float] = []
    async with door_reader() as reader:
        assert reader.hello.capabilities & Capability.BUZZER
        sent = []

        async def place(stop: str | None) -> None:
            places.append(stop)

        async def decided(n: int) -> None:
            sent.append(n)

        taps = [RiderTap(20.0, "B", "04000002"), RiderTap(10.0, "A", "04000001"),
                RiderTap(11.0, "A", "04000003")]  # fmt: skip
        n = await play(taps, {"door-1": reader}, start=1000.0, place=place,
                       set_clock=clock.append, decided=decided)  # fmt: skip
    assert n == 3 and sent == [1, 2, 3]
    assert places == ["A", "B"]  # moved only when the stop changes
    assert clock == [1010.0, 1011.0, 1020.0]


def test_taps_along_a_plan_fall_in_the_dwell_at_a_stop_that_is_not_the_last() -> None:
    from cloud.transport.plan import StopPlan, TripPlan

    stops = tuple(
        StopPlan(s.stop, i + 1, s.stop, s.lat, s.lon, i * 900.0, 1000.0 + i * 300,
                 1000.0 + i * 300 + (0 if i in (0, 2) else 40))
        for i, s in enumerate(STOPS)
    )  # fmt: skip
    plan = TripPlan("T1", "R1", "20261207", (), stops)
    riders = [badge_of(i) for i in range(20)]
    taps = taps_along(plan, 5, riders)
    assert taps == taps_along(plan, 5, riders)
    assert sorted(t.badge for t in taps) == sorted(riders)
    by_stop = {s.stop_id: s for s in stops}
    for t in taps:
        stop = by_stop[t.stop or ""]
        assert t.stop != "C"
        assert stop.arrival - plan.start <= t.at_s <= stop.arrival - plan.start + 40
