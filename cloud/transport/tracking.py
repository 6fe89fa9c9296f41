"""One vehicle's GNSS fixes turned into progress along its trip, with stop arrivals and
departures detected from where the vehicle was and how fast it went.

Sans-io and database-free: `VehicleTracker.feed(fix)` takes one fix (from live telemetry
or replayed from an edge outbox after a dead zone, in any order, possibly twice) and
answers whether it was used, why not, and which stop events changed. Nothing here reads a
clock: callers pass `now` where staleness matters.

Why the stop detection is order-independent: a stop's arrival is the earliest fix seen
slow inside its radius (or the earliest inside it when the vehicle did not stop) and its
departure the latest, so a backlog that arrives after live fixes fills in the same answer
it would have given in order. Only the live view (position, distance along the shape) is
tied to the newest fix, and the distance it shows never decreases.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cloud.transport.geo import haversine_m, project
from cloud.transport.plan import StopPlan, TripPlan

REJECT_REASONS = ("no_fix", "poor_fix", "duplicate", "older", "jump", "impossible_speed", "future")
"""Why a fix was refused: no fix; HDOP too poor to place the vehicle; seen already; older
than the live view and too far from its neighbours in time to fit; a jump of kilometres;
faster than a road vehicle can go (reported or implied); stamped ahead of `now`."""


@dataclass(frozen=True, slots=True)
class Fix:
    """One GNSS fix: Unix seconds, WGS84 degrees, speed over ground, NMEA quality."""

    ts: float
    lat: float | None
    lon: float | None
    speed_kmh: float | None = None
    hdop: float | None = None
    fix_quality: int = 1
    heading_deg: float | None = None


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    max_speed_kmh: float = 130.0  # a shuttle or pool car on IKN roads never exceeds this
    jump_m: float = 1000.0  # an implausible move this long is a GNSS jump, not speeding
    max_hdop: float = 20.0
    stop_radius_m: float = 35.0
    stopped_kmh: float = 5.0  # at or under this the vehicle counts as standing at the stop
    off_route_m: float = 120.0
    stale_after_s: float = 60.0
    reanchor_after: int = 3  # consistent refused jumps in a row that move the vehicle anyway
    max_future_s: float = 30.0
    match_radius_m: float = 150.0
    match_window_s: float = 900.0  # how far before the first / after the last stop to match
    backlog_window_s: float = 3 * 3600.0  # late fixes older than this behind the live one


@dataclass(frozen=True, slots=True)
class StopEvent:
    """Arrival/departure at one stop of one trip as detected so far (upserted by callers)."""

    trip_id: str
    service_date: str
    route_id: str
    stop_id: str
    stop_sequence: int
    arrival: float | None
    departure: float | None  # only once the vehicle has left the stop's radius
    stopped: bool  # seen standing within the radius, not just passing
    inferred: bool  # no fix inside the radius: interpolated between fixes either side
    scheduled_arrival: float
    scheduled_departure: float


@dataclass(frozen=True, slots=True)
class FeedResult:
    accepted: bool
    reason: str | None = None
    events: tuple[StopEvent, ...] = ()
    live: bool = False  # the fix moved the live view (False for a late backlog fix)
    completed: TripPlan | None = None


@dataclass(slots=True)
class _StopObs:
    first_in: float = math.inf
    last_in: float = -math.inf
    first_slow: float = math.inf
    last_slow: float = -math.inf
    before: tuple[float, float] | None = None  # (ts, dist) latest fix short of the radius
    after: tuple[float, float] | None = None  # (ts, dist) earliest fix beyond the radius


@dataclass(slots=True)
class _TripState:
    plan: TripPlan
    assigned: bool
    dist_m: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)  # sorted (ts, dist)
    obs: list[_StopObs] = field(default_factory=list)
    emitted: dict[int, StopEvent] = field(default_factory=dict)


def scheduled_dist(plan: TripPlan, ts: float) -> float:
    """Where the timetable puts the vehicle at `ts` (linear between stops, held at dwell)."""
    stops = plan.stops
    if ts <= stops[0].departure:
        return stops[0].dist_m
    for a, b in itertools.pairwise(stops):
        if ts <= a.departure:
            return a.dist_m
        if ts < b.arrival:
            run = b.arrival - a.departure
            return a.dist_m + (b.dist_m - a.dist_m) * ((ts - a.departure) / run if run else 1)
    return stops[-1].dist_m


def match_trip(
    plans: Iterable[TripPlan], fix: Fix, config: TrackerConfig = TrackerConfig()
) -> TripPlan | None:
    """The scheduled trip this position most plausibly belongs to, or None.

    A candidate runs around `fix.ts` and passes within `match_radius_m` of the fix; the
    best is the one whose timetable puts the vehicle nearest to where it is (a shuttle
    on the return trip along the same road is minutes or kilometres off its schedule).
    """
    if fix.lat is None or fix.lon is None:
        return None
    best: tuple[float, TripPlan] | None = None
    for plan in plans:
        if not plan.stops or len(plan.shape) < 2:
            continue
        if not plan.start - config.match_window_s <= fix.ts <= plan.end + config.match_window_s:
            continue
        expected = scheduled_dist(plan, fix.ts)
        p = project(plan.shape, fix.lat, fix.lon)
        if p.cross_m > config.match_radius_m:
            continue
        if p.dist_m >= plan.stops[-1].dist_m - 2 * config.stop_radius_m:
            continue  # at (or past) its last stop: nothing left of that trip to track
        # Metres off the timetable, plus a little for each second outside the trip's
        # times: at a terminal, the trip about to leave beats the one that just ended.
        outside = max(0.0, plan.start - fix.ts, fix.ts - plan.end)
        score = abs(p.dist_m - expected) + 4 * p.cross_m + 2 * outside
        if best is None or score < best[0]:
            best = (score, plan)
    return best[1] if best else None


class VehicleTracker:
    """The live state of one vehicle. Not thread-safe; one per vehicle, fed in any order."""

    def __init__(self, vehicle: str, config: TrackerConfig = TrackerConfig()) -> None:
        self.vehicle = vehicle
        self.config = config
        self.rejects: Counter[str] = Counter()
        self.accepted = 0
        self.last: Fix | None = None  # newest accepted fix: the live position
        self.cross_m: float | None = None
        self._trip: _TripState | None = None
        self._recent: list[Fix] = []  # accepted fixes sorted by ts, bounded
        self._suspects: list[Fix] = []  # consecutive refused jumps, for re-anchoring
        self.completed: set[tuple[str, str]] = set()
        self._done: deque[_TripState] = deque(maxlen=4)  # finished, still taking backlog
        self._finished_at = -math.inf

    # -- trip ---------------------------------------------------------------------------

    @property
    def trip(self) -> TripPlan | None:
        return self._trip.plan if self._trip else None

    @property
    def assigned(self) -> bool:
        return bool(self._trip and self._trip.assigned)

    def set_trip(self, plan: TripPlan | None, *, assigned: bool = True) -> None:
        """Start tracking `plan` (a dispatcher's assignment, or a match); None drops it."""
        if plan is None:
            self._trip = None
            return
        if self._trip and self._trip.plan.trip_id == plan.trip_id:
            if self._trip.plan.service_date == plan.service_date:
                self._trip.assigned = assigned
                return
        self._trip = _TripState(plan, assigned, obs=[_StopObs() for _ in plan.stops])
        self._trip.dist_m = plan.stops[0].dist_m if plan.stops else 0.0
        # Fixes already seen around the trip's start count towards its first stops.
        since = max(plan.start - self.config.match_window_s, self._finished_at)
        for fix in self._recent:
            if fix.ts >= since:
                self._observe(self._trip, fix, live=fix is self.last)

    # -- live view ----------------------------------------------------------------------

    @property
    def dist_m(self) -> float | None:
        return self._trip.dist_m if self._trip else None

    def stale(self, now: float) -> bool:
        return self.last is None or now - self.last.ts > self.config.stale_after_s

    @property
    def off_route(self) -> bool:
        return self.cross_m is not None and self.cross_m > self.config.off_route_m

    def stop_events(self) -> list[StopEvent]:
        """Every stop of the current trip with what has been detected (arrival may be None)."""
        if self._trip is None:
            return []
        return [self._event(self._trip, i) for i in range(len(self._trip.plan.stops))]

    def next_stop_index(self) -> int | None:
        """Index of the first stop the vehicle has not yet left; None without a trip."""
        t = self._trip
        if t is None:
            return None
        for i, stop in enumerate(t.plan.stops):
            ev = self._event(t, i)
            if ev.departure is None and not (ev.arrival is not None and ev.inferred):
                return i
            if t.dist_m < stop.dist_m - self.config.stop_radius_m:
                return i
        return len(t.plan.stops) - 1

    def last_stop_index(self) -> int | None:
        t = self._trip
        if t is None:
            return None
        seen = [i for i in range(len(t.plan.stops)) if self._event(t, i).arrival is not None]
        return seen[-1] if seen else None

    # -- feeding ------------------------------------------------------------------------

    def feed(self, fix: Fix, now: float | None = None) -> FeedResult:
        reason = self._check(fix, now)
        if reason is not None:
            self.rejects[reason] += 1
            return FeedResult(False, reason)
        self.accepted += 1
        self._suspects.clear()
        live = self.last is None or fix.ts > self.last.ts
        bisect.insort(self._recent, fix, key=lambda f: f.ts)
        if len(self._recent) > 4096:
            del self._recent[:1024]
        if live:
            self.last = fix
        events: list[StopEvent] = []
        completed: TripPlan | None = None
        target = self._trip if live else self._late_target(fix.ts)
        if target is not None:
            events = self._observe(target, fix, live=live)
            if target is self._trip:
                completed = self._maybe_complete()
        elif live:
            self.cross_m = None
        return FeedResult(True, None, tuple(events), live, completed)

    def _check(self, fix: Fix, now: float | None) -> str | None:
        c = self.config
        if fix.fix_quality <= 0 or fix.lat is None or fix.lon is None:
            return "no_fix"
        if not (math.isfinite(fix.lat) and math.isfinite(fix.lon) and math.isfinite(fix.ts)):
            return "no_fix"
        if fix.hdop is not None and fix.hdop > c.max_hdop:
            return "poor_fix"
        if now is not None and fix.ts > now + c.max_future_s:
            return "future"
        if fix.speed_kmh is not None and fix.speed_kmh > c.max_speed_kmh:
            return "impossible_speed"
        i = bisect.bisect_left(self._recent, fix.ts, key=lambda f: f.ts)
        if i < len(self._recent) and self._recent[i].ts == fix.ts:
            return "duplicate"
        if self.last is not None and fix.ts < self.last.ts - c.backlog_window_s:
            return "older"
        # Plausible against the accepted fixes either side of it in time.
        for j in (i - 1, i):
            if 0 <= j < len(self._recent):
                reason = self._implausible(self._recent[j], fix)
                if reason is not None:
                    if self.last is not None and fix.ts > self.last.ts:
                        return self._suspect(fix, reason)
                    return reason
        return None

    def _implausible(self, a: Fix, b: Fix) -> str | None:
        assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
        d = haversine_m(a.lat, a.lon, b.lat, b.lon)
        dt = abs(b.ts - a.ts)
        # A few metres of GNSS noise are allowed even between fixes a moment apart.
        if d <= 30.0 + dt * self.config.max_speed_kmh / 3.6:
            return None
        return "jump" if d >= self.config.jump_m else "impossible_speed"

    def _suspect(self, fix: Fix, reason: str) -> str | None:
        """Refuse, unless several refused fixes in a row agree with each other: then the
        earlier position was the wrong one (e.g. a fix accepted before a long outage)."""
        if self._suspects and self._implausible(self._suspects[-1], fix) is not None:
            self._suspects.clear()
        self._suspects.append(fix)
        if len(self._suspects) < self.config.reanchor_after:
            return reason
        self._recent = [f for f in self._recent if f.ts < self._suspects[0].ts - 3600]
        self._recent.extend(self._suspects[:-1])
        return None

    # -- along the trip -----------------------------------------------------------------

    def _late_target(self, ts: float) -> _TripState | None:
        """The trip a late (backlog) fix belongs to: the current one, or one finished
        while the backlog was still on its way."""
        w = self.config.match_window_s
        for t in (self._trip, *reversed(self._done)):
            if t is not None and t.plan.start - w <= ts <= t.plan.end + w:
                if t is self._trip or not t.history or ts <= t.history[-1][0]:
                    return t
        return None

    def _observe(self, t: _TripState, fix: Fix, *, live: bool) -> list[StopEvent]:
        assert fix.lat is not None and fix.lon is not None
        c = self.config
        # Window the projection around where the neighbours in time were on the shape.
        i = bisect.bisect_left(t.history, (fix.ts, -math.inf))
        prev = t.history[i - 1] if i > 0 else None
        nxt = t.history[i] if i < len(t.history) else None
        if prev is None and nxt is None:
            # Nothing yet on this trip: trust the timetable to say which part of a shape
            # that comes back on itself the vehicle is on.
            expected = scheduled_dist(t.plan, fix.ts)
            lo, hi = expected - 5000.0, expected + 5000.0
        else:
            lo = prev[1] - 2 * c.stop_radius_m if prev else -math.inf
            hi = math.inf
        if prev is not None:
            hi = prev[1] + 50.0 + (fix.ts - prev[0]) * c.max_speed_kmh / 3.6
        if nxt is not None:
            hi = min(hi, nxt[1] + 2 * c.stop_radius_m)
        p = project(t.plan.shape, fix.lat, fix.lon, lo_m=lo, hi_m=max(lo, hi))
        if live:
            self.cross_m = p.cross_m
        if p.cross_m > c.off_route_m:
            return []  # off the route: where it projects says nothing about progress
        t.history.insert(i, (fix.ts, p.dist_m))
        if live:
            t.dist_m = max(t.dist_m, p.dist_m)
        slow = fix.speed_kmh is not None and fix.speed_kmh <= c.stopped_kmh
        changed: list[StopEvent] = []
        for k, stop in enumerate(t.plan.stops):
            o = t.obs[k]
            if abs(p.dist_m - stop.dist_m) <= c.stop_radius_m:
                if p.cross_m > c.stop_radius_m:
                    continue
                o.first_in, o.last_in = min(o.first_in, fix.ts), max(o.last_in, fix.ts)
                if slow:
                    o.first_slow, o.last_slow = min(o.first_slow, fix.ts), max(o.last_slow, fix.ts)
            elif p.dist_m < stop.dist_m:
                if o.before is None or fix.ts > o.before[0]:
                    o.before = (fix.ts, p.dist_m)
            elif o.after is None or fix.ts < o.after[0]:
                o.after = (fix.ts, p.dist_m)
            ev = self._event(t, k)
            if ev != t.emitted.get(k) and (ev.arrival is not None or ev.departure is not None):
                t.emitted[k] = ev
                changed.append(ev)
        return changed

    def _event(self, t: _TripState, k: int) -> StopEvent:
        stop: StopPlan = t.plan.stops[k]
        o = t.obs[k]
        arrival = departure = None
        stopped = inferred = False
        if o.first_in <= o.last_in:
            stopped = o.first_slow <= o.last_slow
            arrival = o.first_slow if stopped else o.first_in
            # Left the stop: a fix past its radius after the last one inside it.
            if o.after is not None and o.after[0] > o.last_in:
                departure = o.last_slow if stopped else o.last_in
        elif o.before is not None and o.after is not None and o.after[0] > o.before[0]:
            (t0, d0), (t1, d1) = o.before, o.after
            f = (stop.dist_m - d0) / (d1 - d0) if d1 > d0 else 0.5
            arrival = departure = t0 + (t1 - t0) * min(1.0, max(0.0, f))
            inferred = True
        if k == len(t.plan.stops) - 1:
            departure = None  # a trip ends at its last stop
        return StopEvent(
            t.plan.trip_id,
            t.plan.service_date,
            t.plan.route_id,
            stop.stop_id,
            stop.stop_sequence,
            arrival,
            departure,
            stopped,
            inferred,
            stop.arrival,
            stop.departure,
        )

    def _maybe_complete(self) -> TripPlan | None:
        t = self._trip
        assert t is not None
        o = t.obs[-1]
        # Done once standing at the last stop, or seen past it.
        if not (o.first_slow <= o.last_slow or o.after is not None):
            return None
        self.completed.add((t.plan.trip_id, t.plan.service_date))
        # Fixes before this moment belong to the finished trip, not to the next one.
        self._finished_at = t.history[-1][0] if t.history else -math.inf
        self._done.append(t)
        self._trip = None
        return t.plan

    def auto_match(self, plans: Sequence[TripPlan]) -> TripPlan | None:
        """With no trip, pick one from the day's plans by position and schedule."""
        if self._trip is not None or self.last is None:
            return None
        free = [p for p in plans if (p.trip_id, p.service_date) not in self.completed]
        plan = match_trip(free, self.last, self.config)
        if plan is not None:
            self.set_trip(plan, assigned=False)
        return plan
