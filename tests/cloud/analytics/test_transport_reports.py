"""The transport report definitions on plain records: on-time window edges, load factor
over the trips that ran, no-show rate, and pool-car hours clipped to working hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cloud.analytics.transport import (
    Boarding,
    CarTrip,
    ReservationOutcome,
    StopDeparture,
    TransportHistory,
    TripRun,
    pool_cars,
    ridership,
    routes,
    working_windows,
)

WITA = ZoneInfo("Asia/Makassar")
MONDAY = datetime(2026, 11, 30, tzinfo=WITA)


def at(day: int, hour: float) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour)


def departure(route: str, delay_s: float) -> StopDeparture:
    scheduled = at(0, 7)
    return StopDeparture(
        route=route,
        trip=f"{route}-t",
        stop="s1",
        scheduled=scheduled,
        actual=scheduled + timedelta(seconds=delay_s),
    )


def history(**records: object) -> TransportHistory:
    h = TransportHistory(
        start=at(0, 0),
        end=at(7, 0),
        timezone="Asia/Makassar",
        route_names={"K1": "K1", "K2": "K2"},
        stop_names={"s1": "Halte Satu", "s2": "Halte Dua"},
    )
    for key, value in records.items():
        setattr(h, key, value)
    return h


def test_on_time_is_one_minute_early_to_five_minutes_late_inclusive() -> None:
    delays = [-61, -60, 0, 300, 301, 900]
    rows, totals = routes(history(departures=[departure("K1", d) for d in delays]))
    k1 = next(r for r in rows if r.route == "K1")
    assert (k1.departures, k1.on_time) == (6, 3)
    assert k1.on_time_rate == 0.5
    assert totals.on_time_rate == 0.5
    k2 = next(r for r in rows if r.route == "K2")
    assert k2.departures == 0 and k2.on_time_rate is None


def test_load_factor_counts_boardings_of_the_trips_whose_seats_count() -> None:
    runs = [TripRun("K1", "a", "20261130", 20), TripRun("K1", "b", "20261130", 20)]
    boardings = [Boarding(at(0, 7), "K1", "a", "20261130", "s1") for _ in range(10)]
    boardings += [Boarding(at(0, 8), "K1", "b", "20261130", "s2") for _ in range(5)]
    # A boarding on a trip with no known run (no vehicle capacity) is ridership only.
    boardings += [Boarding(at(0, 9), "K1", "c", "20261130", "s2")]
    rows, totals = routes(history(runs=runs, boardings=boardings))
    k1 = next(r for r in rows if r.route == "K1")
    assert (k1.trips, k1.boardings, k1.seats, k1.load_factor) == (2, 15, 40, 0.375)
    assert totals.load_factor == 0.375
    by_route = ridership(history(boardings=boardings), "route")
    assert [(r.key, r.boardings) for r in by_route] == [("K1", 16)]


def test_ridership_by_hour_lists_every_local_hour_and_by_stop_most_used_first() -> None:
    boardings = [
        Boarding(at(0, 7.5), "K1", "a", "20261130", "s1"),
        Boarding(at(1, 7.1), "K1", "a", "20261201", "s2"),
        Boarding(at(1, 7.2), "K1", "a", "20261201", "s2"),
        Boarding(at(2, 17.9), "K2", "z", "20261202", "s1"),
    ]
    hours = ridership(history(boardings=boardings), "hour")
    assert len(hours) == 24
    assert {r.key: r.boardings for r in hours if r.boardings} == {"07": 3, "17": 1}
    stops = ridership(history(boardings=boardings), "stop")
    assert [(r.key, r.name, r.boardings) for r in stops] == [
        ("s1", "Halte Satu", 2),
        ("s2", "Halte Dua", 2),
    ]


def test_no_show_rate_is_over_reservations_decided_at_departure() -> None:
    outcomes = [ReservationOutcome("K1", no_show) for no_show in (True, False, False, False)]
    rows, totals = routes(history(reservations=outcomes))
    k1 = next(r for r in rows if r.route == "K1")
    assert (k1.reservations, k1.no_shows, k1.no_show_rate) == (4, 1, 0.25)
    assert totals.no_show_rate == 0.25


def test_working_windows_skip_the_weekend_and_clip_to_the_range() -> None:
    windows = working_windows(at(0, 12), at(7, 0), "Asia/Makassar")
    # Monday from noon (5 h), Tuesday-Friday whole (4 x 10 h), no Saturday or Sunday.
    assert len(windows) == 5
    assert sum((b - a).total_seconds() for a, b in windows) / 3600 == 45
    assert windows[0][0] == at(0, 12).astimezone(UTC)


def test_pool_car_utilisation_counts_hours_out_within_working_hours() -> None:
    trips = [
        # 06:00-09:00: only 07-09 is working time.
        CarTrip("car-1", at(0, 6), at(0, 9), 42_000),
        # Saturday: outside working hours entirely.
        CarTrip("car-1", at(5, 9), at(5, 12), 10_000),
        # Not returned yet: counted up to "now" (Tuesday 10:00).
        CarTrip("car-2", at(1, 8), None, 0),
    ]
    rows, totals = pool_cars(
        history(cars={"car-1": "KT 1 A", "car-2": None, "car-3": None}, car_trips=trips),
        now=at(1, 10),
    )
    by_car = {r.vehicle: r for r in rows}
    assert by_car["car-1"].hours_used == 2 and by_car["car-1"].trips == 2
    assert by_car["car-1"].hours_available == 50
    assert by_car["car-1"].utilisation == 0.04
    assert by_car["car-1"].distance_km == 52
    assert by_car["car-2"].hours_used == 2
    assert by_car["car-3"].hours_used == 0 and by_car["car-3"].trips == 0
    assert totals.hours_available == 150
    assert totals.hours_used == 4
    assert totals.utilisation == round(4 / 150, 4)
