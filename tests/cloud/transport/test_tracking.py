"""The per-vehicle tracker: progress along the shape, stop arrivals/departures from
position and speed, refused fixes with their reasons, backlog in any order, trip matching."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.transport.tracking import Fix, StopEvent, VehicleTracker, match_trip
from simulators.shuttle import ShuttleRun, sample_plan, seeded_traffic
from tests.cloud.transport.tracking_helpers import START, fixes

PLAN = sample_plan(START)
RUN = ShuttleRun(PLAN, traffic=seeded_traffic(7, len(PLAN.stops) - 1))


def drive(tracker: VehicleTracker, items: list[Fix]) -> dict[int, StopEvent]:
    seen: dict[int, StopEvent] = {}
    for fix in items:
        for e in tracker.feed(fix).events:
            seen[e.stop_sequence] = e
    return seen


def test_arrivals_and_departures_come_from_position_and_speed_not_the_timetable() -> None:
    tracker = VehicleTracker("bus-1")
    tracker.set_trip(PLAN)
    seen = drive(tracker, list(fixes(RUN, every_s=5)))
    assert tracker.trip is None and (PLAN.trip_id, PLAN.service_date) in tracker.completed
    for truth in RUN.truth:
        ev = seen[truth.stop_sequence]
        assert ev.stopped and not ev.inferred
        # Within one publishing interval of the simulator's ground truth.
        assert ev.arrival == pytest.approx(truth.arrival, abs=5.01)
        if truth is not RUN.truth[-1]:
            assert ev.departure == pytest.approx(truth.departure, abs=5.01)
    # Traffic made it late: the detected times differ from the timetable by minutes.
    assert seen[PLAN.stops[-1].stop_sequence].arrival - PLAN.end > 60  # type: ignore[operator]
    assert tracker.rejects.total() == 0


def test_departure_is_reported_only_once_the_vehicle_has_left_the_stop() -> None:
    tracker = VehicleTracker("bus-1")
    tracker.set_trip(PLAN)
    second = RUN.truth[1]
    drive(tracker, list(fixes(RUN, until=second.arrival + 10)))
    ev = tracker.stop_events()[1]
    assert ev.arrival is not None and ev.departure is None
    assert tracker.next_stop_index() == 1


def test_a_stop_passed_in_a_tunnel_is_interpolated_and_marked_inferred() -> None:
    stop = PLAN.stops[2]
    run = ShuttleRun(PLAN, dwell_s=0, dead_zone_m=(stop.dist_m - 300, stop.dist_m + 300))
    tracker = VehicleTracker("bus-1")
    tracker.set_trip(PLAN)
    seen = drive(tracker, list(fixes(run)))
    ev = seen[stop.stop_sequence]
    assert ev.inferred and not ev.stopped
    truth = run.truth[2]
    # Constant speed across the tunnel: interpolation lands close to the truth.
    assert ev.arrival == pytest.approx(truth.arrival, abs=15)


def test_backlog_after_a_coverage_gap_fills_in_the_real_stop_times() -> None:
    all_fixes = list(fixes(RUN))
    gap_from, gap_to = RUN.truth[2].arrival - 120, RUN.truth[3].departure + 60
    live = [f for f in all_fixes if not gap_from <= f.ts <= gap_to]
    backlog = [f for f in all_fixes if gap_from <= f.ts <= gap_to]
    reference = VehicleTracker("ref")
    reference.set_trip(PLAN)
    expected = drive(reference, all_fixes)

    tracker = VehicleTracker("bus-1")
    tracker.set_trip(PLAN)
    seen = drive(tracker, live)
    assert seen[RUN.truth[2].stop_sequence].inferred
    dist_before = tracker.dist_m
    seen.update(drive(tracker, backlog))  # the outbox drains after reconnecting
    assert seen == expected
    assert tracker.dist_m == dist_before  # the late fixes did not move the live view


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(min_value=0, max_value=40))
def test_any_order_with_replays_gives_the_same_stop_events_and_never_moves_back(
    rnd: object, replays: int
) -> None:
    import random

    assert isinstance(rnd, random.Random)
    all_fixes = list(fixes(RUN, every_s=10))
    reference = VehicleTracker("ref")
    reference.set_trip(PLAN)
    expected = drive(reference, all_fixes)
    shuffled = all_fixes + [rnd.choice(all_fixes) for _ in range(replays)]
    rnd.shuffle(shuffled)
    tracker = VehicleTracker("bus-1")
    tracker.set_trip(PLAN)
    seen: dict[int, StopEvent] = {}
    last_ts, last_dist = -1.0, -1.0
    for fix in shuffled:
        for e in tracker.feed(fix).events:
            seen[e.stop_sequence] = e
        assert tracker.last is not None and tracker.last.ts >= last_ts
        last_ts = tracker.last.ts
        if tracker.dist_m is not None:
            assert tracker.dist_m >= last_dist
            last_dist = tracker.dist_m
    assert seen == expected
    assert tracker.rejects["duplicate"] == replays


def test_refusals_are_counted_with_their_reason() -> None:
    tracker = VehicleTracker("bus-1")
    tracker.set_trip(PLAN)
    good = list(fixes(RUN, until=RUN.t0 + 200))
    drive(tracker, good)
    last = good[-1]
    assert last.lat is not None and last.lon is not None
    cases = {
        "no_fix": dataclasses.replace(last, ts=last.ts + 5, fix_quality=0),
        "poor_fix": dataclasses.replace(last, ts=last.ts + 5, hdop=45.0),
        "duplicate": last,
        "jump": dataclasses.replace(last, ts=last.ts + 5, lat=last.lat + 0.05),  # ~5.5 km
        "impossible_speed": dataclasses.replace(last, ts=last.ts + 5, speed_kmh=320.0),
        "older": dataclasses.replace(last, ts=last.ts - 4 * 3600),
        "future": dataclasses.replace(last, ts=last.ts + 3600),
    }
    before = tracker.stop_events(), tracker.dist_m, tracker.last
    for reason, fix in cases.items():
        result = tracker.feed(fix, now=last.ts + 6)
        assert (result.accepted, result.reason) == (False, reason)
        assert tracker.rejects[reason] == 1
    # 300 m in 5 s (216 km/h) is not a jump of kilometres but still impossible.
    fast = dataclasses.replace(last, ts=last.ts + 5, lat=last.lat + 0.0027)
    assert tracker.feed(fast).reason == "impossible_speed"
    assert (tracker.stop_events(), tracker.dist_m, tracker.last) == before


def test_consistent_fixes_after_a_refused_jump_reanchor_the_vehicle() -> None:
    tracker = VehicleTracker("car-1")
    tracker.feed(Fix(START, -0.97, 116.70, 0.0))
    far = [Fix(START + 10 + i, -1.02, 116.70, 10.0) for i in range(3)]
    reasons = [tracker.feed(f).reason for f in far]
    assert reasons == ["jump", "jump", None]
    assert tracker.last == far[-1]


def test_off_route_and_stale_flags() -> None:
    tracker = VehicleTracker("bus-1")
    tracker.set_trip(PLAN)
    first = next(fixes(RUN))
    tracker.feed(first)
    assert not tracker.off_route and not tracker.stale(first.ts + 30)
    assert tracker.stale(first.ts + 61)
    assert first.lat is not None
    detour = dataclasses.replace(first, ts=first.ts + 30, lat=first.lat + 0.002)  # ~220 m
    assert tracker.feed(detour).accepted
    assert tracker.off_route
    assert tracker.dist_m == PLAN.stops[0].dist_m


def test_trip_matching_picks_the_scheduled_trip_the_position_fits() -> None:
    outbound = PLAN
    inbound = sample_plan(START + 1800, trip_id="T2", reverse=True)
    later = sample_plan(START + 7200, trip_id="T3")
    run = ShuttleRun(inbound)
    mid = RUN.truth[4]
    sample_in = run.sample(run.truth[3].departure + 60)
    fix_in = Fix(sample_in.when.timestamp(), sample_in.lat, sample_in.lon, 30.0)
    assert match_trip([outbound, inbound, later], fix_in) is inbound
    sample_out = RUN.sample(mid.arrival)
    fix_out = Fix(mid.arrival, sample_out.lat, sample_out.lon, 0.0)
    assert match_trip([outbound, inbound, later], fix_out) is outbound
    # Far from every shape, or hours from every trip: no match.
    assert match_trip([outbound, inbound], Fix(mid.arrival, -0.80, 116.90)) is None
    assert match_trip([outbound], dataclasses.replace(fix_out, ts=START + 10 * 3600)) is None


def test_auto_matched_trip_then_the_next_one_after_completion() -> None:
    second = sample_plan(RUN.end + 600, trip_id="T1b")
    tracker = VehicleTracker("bus-1")
    plans = [PLAN, second]
    matched = []
    for fix in list(fixes(RUN)) + list(fixes(ShuttleRun(second, lead_s=300))):
        tracker.feed(fix)
        if tracker.trip is None and tracker.auto_match(plans) is not None:
            matched.append(tracker.trip.trip_id if tracker.trip else None)
    assert matched == ["T1", "T1b"]
    assert not tracker.assigned
