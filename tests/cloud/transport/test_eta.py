"""ETAs: segment running times learned from detected stop events beat the timetable."""

from __future__ import annotations

import statistics

import pytest

from cloud.transport.eta import SegmentTimes, predict, predict_for, timetable_etas
from cloud.transport.tracking import VehicleTracker
from simulators.shuttle import ShuttleRun, sample_plan, seeded_traffic
from tests.cloud.transport.tracking_helpers import START, fixes

TRAFFIC = seeded_traffic(11, 8)


def run_trip(times: SegmentTimes, start: float, trip_id: str) -> tuple[ShuttleRun, list[float]]:
    """Drive one trip, learn from it, and return the absolute errors of predictions made
    4 stops ahead (ETA minus the simulator's ground truth)."""
    plan = sample_plan(start, trip_id=trip_id)
    run = ShuttleRun(plan, traffic=TRAFFIC)
    tracker = VehicleTracker("bus-1")
    tracker.set_trip(plan)
    errors: list[float] = []
    truth = {t.stop_sequence: t.arrival for t in run.truth}
    for fix in fixes(run):
        result = tracker.feed(fix)
        if result.completed:
            break
        etas = predict_for(tracker, times, fix.ts)
        if len(etas) > 4:
            errors.append(abs(etas[4].arrival - truth[etas[4].stop_sequence]))
        times.learn(tracker.stop_events())
    return run, errors


def test_learned_segment_times_predict_better_than_the_timetable() -> None:
    times = SegmentTimes()
    first_run, first_errors = run_trip(times, START, "T1")
    assert len(times) == len(first_run.plan.stops) - 1
    second_run, second_errors = run_trip(times, START + 3600, "T2")
    plan = second_run.plan
    baseline = [
        abs(s.arrival - t.arrival)
        for s, t in zip(timetable_etas(plan), second_run.truth, strict=True)
    ]
    assert statistics.mean(second_errors) < statistics.mean(first_errors)
    assert statistics.mean(second_errors) < 0.5 * statistics.mean(baseline)


def test_prediction_holds_at_scheduled_departures_and_falls_back_to_the_timetable() -> None:
    plan = sample_plan(START)
    times = SegmentTimes()
    # Standing at stop 2, arrived 2 minutes early: it leaves at the scheduled departure.
    at = plan.stops[1]
    etas = predict(
        plan,
        now=at.arrival - 120,
        dist_m=at.dist_m,
        next_index=1,
        arrived_at=at.arrival - 120,
        times=times,
    )
    assert etas[0].departure == at.departure
    assert etas[0].arrival == at.arrival - 120  # the detected arrival, not a prediction
    assert [e.arrival for e in etas[1:]] == [s.arrival for s in plan.stops[2:]]
    assert all(e.delay_s == 0 for e in etas[1:])


def test_halfway_along_a_segment_half_its_running_time_remains() -> None:
    plan = sample_plan(START)
    a, b = plan.stops[0], plan.stops[1]
    now = a.departure + 100
    etas = predict(
        plan,
        now=now,
        dist_m=(a.dist_m + b.dist_m) / 2,
        next_index=1,
        arrived_at=None,
        times=SegmentTimes(),
    )
    assert etas[0].arrival == pytest.approx(now + (b.arrival - a.departure) / 2)
    assert etas[0].delay_s == round(now + (b.arrival - a.departure) / 2 - b.arrival)


def test_old_observations_are_forgotten() -> None:
    times = SegmentTimes(max_age_s=3600)
    run_trip(times, START, "T1")
    plan = sample_plan(START)
    a, b = plan.stops[0], plan.stops[1]
    assert times.running_time(plan.route_id, a.stop_id, b.stop_id, START + 1800) is not None
    assert times.running_time(plan.route_id, a.stop_id, b.stop_id, START + 6 * 3600) is None
