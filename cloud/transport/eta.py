"""Predicted arrival at each upcoming stop, from where the vehicle is now and how long the
same stretches of the route took on recent trips.

`SegmentTimes` learns running times (departure from one stop to arrival at the next) and
dwell times per route from the arrivals and departures the tracker detected; `predict`
walks the rest of a trip from the vehicle's progress with them, falling back to the
timetable's times for a segment nobody has driven yet. A shuttle does not leave a stop
before its scheduled departure (it holds at timepoints), so neither does the prediction.
`timetable_etas` is the baseline the benchmark compares with: the timetable alone.
Sans-io, no clock: callers pass `now`.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cloud.transport.plan import TripPlan
from cloud.transport.tracking import StopEvent, VehicleTracker

_Sample = tuple[tuple[str, str], float, float]  # (trip_id, service_date), when, seconds


@dataclass(frozen=True, slots=True)
class StopEta:
    stop_id: str
    stop_sequence: int
    arrival: float  # predicted (or detected, for a stop the vehicle stands at) Unix seconds
    departure: float
    scheduled_arrival: float
    scheduled_departure: float

    @property
    def delay_s(self) -> int:
        return round(self.arrival - self.scheduled_arrival)


class SegmentTimes:
    """Recent running and dwell times per route segment, newest `keep` of each, within
    `max_age_s` of now: traffic in the morning peak says little about the evening."""

    def __init__(self, keep: int = 5, max_age_s: float = 3 * 3600.0) -> None:
        self.keep = keep
        self.max_age_s = max_age_s
        self._run: dict[tuple[str, ...], deque[_Sample]] = {}
        self._dwell: dict[tuple[str, ...], deque[_Sample]] = {}

    def _put(
        self,
        table: dict[tuple[str, ...], deque[_Sample]],
        key: tuple[str, ...],
        trip: tuple[str, str],
        at: float,
        seconds: float,
    ) -> None:
        q = table.setdefault(key, deque(maxlen=self.keep))
        # A trip's later, better detection of the same segment replaces its first one.
        for i, (t, _, _) in enumerate(q):
            if t == trip:
                q[i] = (trip, at, seconds)
                return
        q.append((trip, at, seconds))

    def learn(self, events: Sequence[StopEvent]) -> None:
        """Record what the detected events of one trip (in stop order) say about its
        segments; inferred (interpolated) times are not measurements and are skipped."""
        ordered = sorted(events, key=lambda e: e.stop_sequence)
        for a, b in itertools.pairwise(ordered):
            if a.inferred or b.inferred or a.departure is None or b.arrival is None:
                continue
            run = b.arrival - a.departure
            if run <= 0:
                continue
            trip = (a.trip_id, a.service_date)
            key = (a.route_id, a.stop_id, b.stop_id)
            self._put(self._run, key, trip, b.arrival, run)
        for e in ordered:
            if e.stopped and not e.inferred and e.arrival is not None and e.departure is not None:
                trip = (e.trip_id, e.service_date)
                key2 = (e.route_id, e.stop_id)
                self._put(self._dwell, key2, trip, e.departure, e.departure - e.arrival)

    @staticmethod
    def _median(q: Iterable[_Sample], now: float, age: float) -> float | None:
        values = [s for _, at, s in q if now - at <= age]
        return statistics.median(values) if values else None

    def running_time(self, route_id: str, a: str, b: str, now: float) -> float | None:
        q = self._run.get((route_id, a, b))
        return None if q is None else self._median(q, now, self.max_age_s)

    def dwell(self, route_id: str, stop_id: str, now: float) -> float | None:
        q = self._dwell.get((route_id, stop_id))
        return None if q is None else self._median(q, now, self.max_age_s)

    def __len__(self) -> int:
        return sum(len(q) for q in self._run.values())


def timetable_etas(plan: TripPlan, from_index: int = 0) -> list[StopEta]:
    """The baseline: every upcoming stop at its scheduled time."""
    return [
        StopEta(s.stop_id, s.stop_sequence, s.arrival, s.departure, s.arrival, s.departure)
        for s in plan.stops[from_index:]
    ]


def predict(
    plan: TripPlan,
    *,
    now: float,
    dist_m: float,
    next_index: int,
    arrived_at: float | None,
    times: SegmentTimes,
    holding: bool = True,
) -> list[StopEta]:
    """ETAs for stops `next_index`.. of `plan`.

    `arrived_at` is the detected arrival at the next stop when the vehicle stands there
    (not yet departed); otherwise the vehicle is on the way to it at `dist_m`.
    """
    stops = plan.stops
    if not stops or not 0 <= next_index < len(stops):
        return []
    out: list[StopEta] = []
    r = plan.route_id

    def run_time(i: int) -> float:
        a, b = stops[i], stops[i + 1]
        learned = times.running_time(r, a.stop_id, b.stop_id, now)
        return learned if learned is not None else max(0.0, b.arrival - a.departure)

    def leave(i: int, arrival: float) -> float:
        s = stops[i]
        learned = times.dwell(r, s.stop_id, now)
        dwell = learned if learned is not None else max(0.0, s.departure - s.arrival)
        t = max(arrival + dwell, now)
        return max(t, s.departure) if holding else t

    n = next_index
    if arrived_at is not None:
        arrival = arrived_at
    elif n == 0:
        arrival = max(now, stops[0].arrival)
    else:
        prev = stops[n - 1]
        span = stops[n].dist_m - prev.dist_m
        done = 0.0 if span <= 0 else min(1.0, max(0.0, (dist_m - prev.dist_m) / span))
        arrival = now + run_time(n - 1) * (1.0 - done)
    for i in range(n, len(stops)):
        s = stops[i]
        departure = leave(i, arrival) if i < len(stops) - 1 else arrival
        out.append(StopEta(s.stop_id, s.stop_sequence, arrival, departure, s.arrival, s.departure))
        if i + 1 < len(stops):
            arrival = departure + run_time(i)
    return out


def predict_for(tracker: VehicleTracker, times: SegmentTimes, now: float) -> list[StopEta]:
    """ETAs for the tracker's current trip from its live progress ([] without a trip)."""
    plan = tracker.trip
    n = tracker.next_stop_index()
    if plan is None or n is None or tracker.dist_m is None:
        return []
    events = tracker.stop_events()
    ev = events[n]
    arrived = ev.arrival if ev.arrival is not None and not ev.inferred else None
    return predict(
        plan, now=now, dist_m=tracker.dist_m, next_index=n, arrived_at=arrived, times=times
    )
