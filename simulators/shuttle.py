"""A shuttle driving one scheduled trip along its shape, as NMEA on a pty.

`ShuttleRun` is the sans-io model: it works out, before the first second, when the
shuttle arrives at and leaves every stop (dwell at each stop, never leaving before the
scheduled departure, each segment driven at the timetable's speed slowed by a traffic
factor) and answers where it is at any instant. Its `truth` is the ground truth the ETA
benchmark scores predictions against. `ShuttleSimulator` is the existing `GpsSimulator`
on a pty, fed by a `ShuttleRun` instead of its looping route: real clock
(`time_factor=1`) or accelerated, with a dead zone along the shape where the receiver
has no fix (the shuttle keeps driving).

`seeded_traffic` makes reproducible congestion per segment; `sample_plan` builds a
synthetic trip around the IKN government core for tests and benchmarks that do not load
a GTFS schedule.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass

from cloud.transport.geo import build_shape, course_at, point_at
from cloud.transport.plan import StopPlan, TripPlan
from simulators.gps import GpsSimulator, Sample

# Housing (north-west) -> government core (south-east), around -0.97, 116.70.
SAMPLE_WAYPOINTS: tuple[tuple[float, float], ...] = (
    (-0.9300, 116.6650),
    (-0.9330, 116.6690),
    (-0.9360, 116.6720),
    (-0.9390, 116.6750),
    (-0.9420, 116.6780),
    (-0.9450, 116.6800),
    (-0.9480, 116.6820),
    (-0.9500, 116.6860),
    (-0.9530, 116.6900),
    (-0.9570, 116.6930),
    (-0.9600, 116.6970),
    (-0.9630, 116.7000),
    (-0.9660, 116.7030),
    (-0.9690, 116.7060),
    (-0.9720, 116.7080),
    (-0.9740, 116.7120),
    (-0.9750, 116.7160),
)


def sample_plan(
    start: float,
    *,
    trip_id: str = "T1",
    route_id: str = "R1",
    service_date: str = "20240819",
    stop_every: int = 2,
    speed_kmh: float = 30.0,
    dwell_s: float = 30.0,
    reverse: bool = False,
    waypoints: Sequence[tuple[float, float]] = SAMPLE_WAYPOINTS,
) -> TripPlan:
    """A trip over `waypoints` with a stop at every `stop_every`-th vertex, timed
    at `speed_kmh` between stops with `dwell_s` at each; first departure at `start`."""
    points = list(waypoints)[::-1] if reverse else list(waypoints)
    shape = build_shape(points)
    idx = list(range(0, len(shape), stop_every))
    if idx[-1] != len(shape) - 1:
        idx.append(len(shape) - 1)
    stops: list[StopPlan] = []
    t = start
    for n, i in enumerate(idx):
        p = shape[i]
        if n:
            t += (p.dist_m - shape[idx[n - 1]].dist_m) / (speed_kmh / 3.6)
            t = float(round(t))
        arrival = t
        departure = t if n in (0, len(idx) - 1) else t + dwell_s
        sid = f"S{i if not reverse else len(shape) - 1 - i}"
        stop = StopPlan(sid, n + 1, f"Halte {sid}", p.lat, p.lon, p.dist_m, arrival, departure)
        stops.append(stop)
        t = departure
    return TripPlan(trip_id, route_id, service_date, shape, tuple(stops), direction_id=int(reverse))


def seeded_traffic(seed: int, segments: int, *, congested: float = 0.35) -> list[float]:
    """Per-segment slow-down factors (1.0 = timetable speed): about `congested` of the
    segments are jammed (x1.4..2.2), the rest run within a few percent of the timetable."""
    rng = random.Random(seed)
    return [
        rng.uniform(1.4, 2.2) if rng.random() < congested else rng.uniform(0.95, 1.1)
        for _ in range(segments)
    ]


@dataclass(frozen=True, slots=True)
class StopTruth:
    stop_id: str
    stop_sequence: int
    arrival: float
    departure: float


class ShuttleRun:
    """The whole trip worked out in advance: `at(ts)` says where the shuttle is."""

    def __init__(
        self,
        plan: TripPlan,
        *,
        traffic: Sequence[float] | None = None,
        dwell_s: float = 20.0,
        lead_s: float = 60.0,
        dead_zone_m: tuple[float, float] | None = None,
        max_speed_kmh: float = 80.0,
    ) -> None:
        if len(plan.stops) < 2:
            raise ValueError("a trip needs two stops")
        self.plan = plan
        self.dead_zone_m = dead_zone_m
        n = len(plan.stops) - 1
        factors = list(traffic) if traffic is not None else [1.0] * n
        if len(factors) != n:
            raise ValueError("one traffic factor per segment")
        self.t0 = plan.start - lead_s
        truth: list[StopTruth] = []
        # Phases: (t_start, t_end, d_start, d_end); standing phases have d_start == d_end.
        self._phases: list[tuple[float, float, float, float]] = []
        arrival = self.t0
        for i, stop in enumerate(plan.stops):
            last = i == n
            departure = arrival if last else max(stop.departure, arrival + dwell_s)
            if i == 0:
                departure = max(stop.departure, arrival)
            truth.append(StopTruth(stop.stop_id, stop.stop_sequence, arrival, departure))
            self._phases.append((arrival, departure, stop.dist_m, stop.dist_m))
            if last:
                break
            nxt = plan.stops[i + 1]
            length = nxt.dist_m - stop.dist_m
            scheduled = max(1.0, nxt.arrival - stop.departure)
            speed = min(max_speed_kmh / 3.6, length / scheduled / factors[i])
            arrival = departure + length / speed
            self._phases.append((departure, arrival, stop.dist_m, nxt.dist_m))
        self.truth = tuple(truth)
        self.end = truth[-1].arrival
        self._starts = [p[0] for p in self._phases]

    def state(self, ts: float) -> tuple[float, float]:
        """(distance along the shape, speed km/h) at `ts`."""
        if ts <= self.t0:
            return self._phases[0][2], 0.0
        k = max(0, bisect.bisect_right(self._starts, ts) - 1)
        t_a, t_b, d_a, d_b = self._phases[k]
        if ts >= t_b or d_a == d_b:
            return (d_b if ts >= t_b else d_a), 0.0
        speed = (d_b - d_a) / (t_b - t_a)
        return d_a + (ts - t_a) * speed, speed * 3.6

    def sample(self, ts: float) -> Sample:
        dist, speed = self.state(ts)
        lat, lon = point_at(self.plan.shape, dist)
        zone = self.dead_zone_m
        fix = zone is None or not zone[0] <= dist <= zone[1]
        when = dt.datetime.fromtimestamp(ts, dt.UTC)
        return Sample(when, lat, lon, speed, course_at(self.plan.shape, dist), fix)


class ShuttleSimulator(GpsSimulator):
    """`async with ShuttleSimulator(ShuttleRun(plan), time_factor=20) as sim:` then open
    `sim.path`. One NMEA burst (GGA, RMC, VTG) per simulated second from `run.t0`; after
    the last stop the shuttle stands there. `emitted` maps each simulated second with a
    fix to the loop time its burst was written, for latency measurements."""

    def __init__(self, run: ShuttleRun, *, time_factor: float = 1.0, start: float | None = None):
        shape = run.plan.shape
        begin = run.t0 if start is None else start
        super().__init__(
            [(shape[0].lat, shape[0].lon), (shape[-1].lat, shape[-1].lon)],
            time_factor=time_factor,
            start=dt.datetime.fromtimestamp(int(begin), dt.UTC),
        )
        self.run = run
        self.emitted: dict[int, float] = {}

    def _tick(self) -> None:
        if self._closed:
            return
        self.sim_time += dt.timedelta(seconds=1)
        ts = self.sim_time.timestamp()
        sample = self.run.sample(ts)
        if not self.has_fix:  # the lose_fix() knob still works on top of the dead zone
            sample = Sample(sample.when, sample.lat, sample.lon, sample.speed_kmh, 0.0, False)
        if self._lost_ticks:
            self._lost_ticks -= 1
        self.last_sample = sample
        if sample.fix:
            self.emitted[int(ts)] = self._now()
        for sentence in self.sentences(sample):
            self._emit(sentence)
        self._schedule()
