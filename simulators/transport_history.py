"""Simulated shuttle history: weeks of riders boarding and shuttles serving their stops.

`transport_history` turns past service days of a timetable (`TripPlan`s, what the
shuttle simulator drives) into what the vehicles would have left behind:

- `boarding` events, one per rider, as each shuttle's node would have sent them
  (decided `walk_on`, the stop where the shuttle stood, the moment during its dwell);
- stop events (arrival/departure at each stop with a seeded delay, what the cloud's
  live tracker detects from positions), for on-time performance.

Riders follow the office day: most trips are light, the trips leaving 07:00-08:00
and 16:30-17:30 local time carry the rush. A timetable that the demo shifted by
whole hours (launch/demo_fleet.py, outside service hours) is shifted back with
`shift_h`, so the past reads in its natural hours.

Everything is derived from (seed, trip, service day) alone, message ids included:
a second backfill of the same days is dropped by the cloud's exactly-once
de-duplication on the message id. Nothing here talks to a broker or a database.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cloud.transport.plan import TripPlan
from cloud.transport.tracking import StopEvent
from ruang import contract

# Riders per trip (mean) by the local minute of the trip's first departure.
RUSH = ((7 * 60, 8 * 60, 3.5), (16 * 60 + 30, 17 * 60 + 30, 3.0))
SHOULDER = 0.6  # the hour either side of a rush
QUIET = 0.1


@dataclass(frozen=True)
class TransportHistory:
    boardings: list[contract.Boarding]
    stop_events: list[tuple[str, StopEvent]]  # (vehicle id, event)


def _rng(seed: int, *parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def riders_mean(minute: float) -> float:
    """Mean riders of a trip leaving at `minute` after local midnight."""
    for start, end, mean in RUSH:
        if start <= minute < end:
            return mean
    if any(start - 60 <= minute < end + 60 for start, end, _ in RUSH):
        return SHOULDER
    return QUIET


def transport_history(
    plans: Sequence[TripPlan],
    badges: Sequence[str],
    *,
    vehicle_of: Callable[[str], str | None],
    node_of: Callable[[str], str],
    tz: str,
    seed: int,
    shift_h: int = 0,
) -> TransportHistory:
    """Boardings and stop events of `plans` (trips of past service days).

    `vehicle_of(route_id)` names the shuttle that ran a route (None: nobody ran it,
    the trip is left out); `node_of(vehicle)` the edge node riding in it.
    """
    zone = ZoneInfo(tz)
    back = shift_h * 3600.0
    boardings: list[contract.Boarding] = []
    events: list[tuple[str, StopEvent]] = []
    for plan in sorted(plans, key=lambda p: (p.start, p.trip_id)):
        vehicle = vehicle_of(plan.route_id)
        if vehicle is None or len(plan.stops) < 2:
            continue
        rng = _rng(seed, plan.trip_id, plan.service_date)
        # A trip's delay builds up along the route (traffic), a little noise at each stop.
        delay, times = rng.uniform(-30, 60), []
        for stop in plan.stops:
            delay = max(-50.0, delay + rng.gauss(15, 45))
            arrival = stop.arrival - back + delay
            departure = max(arrival + rng.uniform(15, 40), stop.departure - back)
            times.append((arrival, departure))
            events.append(
                (
                    vehicle,
                    StopEvent(
                        trip_id=plan.trip_id,
                        service_date=plan.service_date,
                        route_id=plan.route_id,
                        stop_id=stop.stop_id,
                        stop_sequence=stop.stop_sequence,
                        arrival=round(arrival, 1),
                        departure=round(departure, 1),
                        stopped=True,
                        inferred=False,
                        scheduled_arrival=stop.arrival - back,
                        scheduled_departure=stop.departure - back,
                    ),
                )
            )
        local = datetime.fromtimestamp(plan.start - back, zone)
        mean = riders_mean(local.hour * 60 + local.minute)
        count = min(len(badges), _poisson(rng, mean))
        node = node_of(vehicle)
        for k, badge in enumerate(rng.sample(list(badges), count)):
            i = rng.randrange(len(plan.stops) - 1)  # nobody boards at the last stop
            arrival, departure = times[i]
            at = rng.uniform(arrival + 2, max(arrival + 3, departure - 2))
            stop = plan.stops[i]
            boardings.append(
                contract.Boarding(
                    id=f"hist-{vehicle}-{plan.service_date}-{plan.trip_id}-{k:03d}",
                    node=node,
                    ts=round(at, 1),
                    vehicle=vehicle,
                    reader="door-1",
                    badge=badge,
                    allowed=True,
                    reason="walk_on",
                    trip=plan.trip_id,
                    service_date=plan.service_date,
                    stop=stop.stop_id,
                    lat=stop.lat,
                    lon=stop.lon,
                )
            )
    boardings.sort(key=lambda b: (b.ts, b.id))
    return TransportHistory(boardings, events)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: small means only, which is all a shuttle trip needs.
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
