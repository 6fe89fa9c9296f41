"""The sample IKN schedule loads, and schedule.py answers service days, trips, plans, departures."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.transport import schedule
from cloud.transport.gtfs_export import sample_zip
from cloud.transport.gtfs_import import import_gtfs

WITA = schedule.ZoneInfo("Asia/Makassar")
MONDAY = date(2026, 12, 7)


@pytest.fixture
async def sample(engine: AsyncEngine) -> AsyncEngine:
    counts = await import_gtfs(engine, sample_zip())
    assert counts["trips.txt"] > 100 and counts["stop_times.txt"] > counts["trips.txt"] * 3
    return engine


async def test_weekday_service_runs_and_weekend_does_not(sample: AsyncEngine) -> None:
    async with sample.connect() as conn:
        assert await schedule.services_on(conn, MONDAY) == {"WEEKDAY"}
        assert await schedule.services_on(conn, date(2026, 12, 6)) == set()  # Sunday
        assert await schedule.trips_on(conn, "20261206") == []


async def test_calendar_dates_remove_a_holiday_and_add_a_working_saturday(
    sample: AsyncEngine,
) -> None:
    async with sample.connect() as conn:
        assert await schedule.services_on(conn, date(2026, 12, 25)) == set()  # Friday, Natal
        assert await schedule.services_on(conn, date(2026, 12, 19)) == {"WEEKDAY"}  # Saturday
        assert await schedule.services_on(conn, date(2028, 1, 3)) == set()  # after end_date


async def test_trips_on_a_weekday_run_from_six_to_seven_in_wita(sample: AsyncEngine) -> None:
    async with sample.connect() as conn:
        trips = await schedule.trips_on(conn, MONDAY)
        k1 = await schedule.trips_on(conn, MONDAY, route="K1")
        at_setneg = await schedule.trips_on(conn, MONDAY, stop="KIPP-SETNEG")
    assert len(trips) == 234
    first = datetime.fromtimestamp(trips[0].start, WITA)
    last = datetime.fromtimestamp(max(t.end for t in trips), WITA)
    assert (first.hour, first.minute) == (6, 0) and first.date() == MONDAY
    assert last.hour == 19
    assert {t.route_id for t in k1} == {"K1"} and len(k1) == 78
    assert {t.route_id for t in at_setneg} == {"K2", "K3"}


async def test_trip_plan_has_stops_in_order_along_the_shape(sample: AsyncEngine) -> None:
    async with sample.connect() as conn:
        plan = await schedule.trip_plan(conn, "K1-0-0600", "20261207")
        not_today = await schedule.trip_plan(conn, "K1-0-0600", date(2026, 12, 6))
        unknown = await schedule.trip_plan(conn, "no-such-trip", MONDAY)
    assert plan is not None and not_today is None and unknown is None
    assert plan.stops[0].stop_id == "HA-BLOK-A"
    assert plan.stops[-1].stop_id == "KIPP-TERM"
    dists = [s.dist_m for s in plan.stops]
    assert dists == sorted(dists) and dists[0] == 0
    # The stops lie on the shape's vertices: their distance is the shape's there.
    vertex = {(p.lat, p.lon): p.dist_m for p in plan.shape}
    for stop in plan.stops:
        assert stop.dist_m == pytest.approx(vertex[(stop.lat, stop.lon)], abs=0.5)
    assert plan.length_m == pytest.approx(plan.stops[-1].dist_m, abs=0.5)
    assert 2500 < plan.length_m < 4500
    assert datetime.fromtimestamp(plan.start, WITA).strftime("%H:%M") == "06:00"
    assert all(s.departure >= s.arrival for s in plan.stops)
    assert plan.service_date == "20261207" and plan.headsign == "KIPP"


async def test_plans_for_day_equal_each_trip_plan(sample: AsyncEngine) -> None:
    async with sample.connect() as conn:
        plans = await schedule.plans_for_day(conn, MONDAY)
        one = await schedule.trip_plan(conn, plans[17].trip_id, MONDAY)
    assert len(plans) == 234
    assert one == plans[17]
    assert [p.start for p in plans] == sorted(p.start for p in plans)


async def test_departures_from_a_stop_after_a_time(sample: AsyncEngine) -> None:
    after = datetime(2026, 12, 7, 9, 5, tzinfo=WITA).timestamp()
    async with sample.connect() as conn:
        deps = await schedule.departures_from(conn, "HA-BLOK-A", after, limit=3)
        # The terminus of every inbound trip: only outbound trips leave from it.
        term = await schedule.departures_from(conn, "KIPP-TERM", after, limit=50)
        # Friday evening after the last trip: the next is Monday morning.
        friday = datetime(2026, 12, 11, 20, 0, tzinfo=WITA).timestamp()
        weekend = await schedule.departures_from(conn, "HA-BLOK-A", friday, limit=1,
                                                 horizon_s=4 * 86_400)  # fmt: skip
    times = [datetime.fromtimestamp(d.departure, WITA).strftime("%H:%M") for d in deps]
    assert times == ["09:30", "10:00", "10:30"]
    assert all(d.trip_id.startswith("K1-0-") for d in deps)
    assert term and all(d.trip_id.split("-")[1] == "1" for d in term)
    assert [datetime.fromtimestamp(d.departure, WITA).isoformat() for d in weekend] == [
        "2026-12-14T06:00:00+08:00"
    ]
