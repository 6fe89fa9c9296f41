"""Shuttle boarding decisions: may this badge board now, and what the door reader shows.

Pure logic, no I/O, decided from the signed snapshot (edge/snapshot.py) and the
node's clock, so a tap is answered in well under a millisecond with the uplink
down. A tap at the door of a shuttle is decided in this order:

1. the badge is not on the snapshot's allow-list (unknown, revoked, expired) ->
   refused, `unknown_badge`;
2. no trip of this vehicle is running now (from `BOARDING_EARLY_S` before its
   first departure to `BOARDING_LATE_S` after its last arrival) -> refused,
   `no_trip` (policy: a shuttle off its timetable carries nobody the operator
   cannot count; the driver can still open the door by hand);
3. the person holds a seat reservation on that trip -> allowed, `reserved`
   (whatever stop they reserved from: a rider who walks to the next stop keeps
   their seat);
4. a free place is left (the trip's capacity, minus the reservations the
   snapshot counted, minus the walk-ons this node has let on for that trip)
   -> allowed, `walk_on`;
5. otherwise -> refused, `full`.

A rider already let on this trip who taps again is answered as before but not
counted again (`repeat`): ridership counts riders, not taps. The stop is the
trip stop nearest the vehicle's last fix, if within `STOP_RADIUS_M`.

Each outcome has its own LED and beep on the door reader (docs/transport.md,
"Boarding and pick-up at the vehicle: LED and beep meanings").
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from firmware_bridge.deskunit import Beep, LedPattern, LedSet
from ruang import contract

from .snapshot import SnapshotView

log = logging.getLogger(__name__)

# A shuttle opens its door for a trip this long before the first departure...
BOARDING_EARLY_S = 600.0
# ... and still counts riders for it this long after its last scheduled arrival (delays).
BOARDING_LATE_S = 1800.0
# A fix within this distance of a stop puts the vehicle at that stop.
STOP_RADIUS_M = 80.0
EARTH_RADIUS_M = 6_371_000.0
# GTFS service days are in the operator's local time (WITA).
SERVICE_TZ = ZoneInfo("Asia/Makassar")

Reason = Literal["reserved", "walk_on", "full", "unknown_badge", "no_trip", "not_allowed"]


@dataclass(frozen=True, slots=True)
class Signal:
    """What the door reader shows and sounds for one outcome."""

    led: LedSet
    beep: Beep


# Green = board; red = do not. Reserved and walk-on differ by pattern and beeps so the
# driver hears which it was; "full" is amber so it reads as "not you, the bus".
SIGNALS: dict[str, Signal] = {
    "reserved": Signal(LedSet(0, 200, 0, LedPattern.SOLID, 2), Beep(1, 120)),
    "walk_on": Signal(LedSet(0, 200, 0, LedPattern.PULSE, 2), Beep(2, 80)),
    "full": Signal(LedSet(255, 120, 0, LedPattern.BLINK, 3), Beep(1, 600)),
    "unknown_badge": Signal(LedSet(220, 0, 0, LedPattern.BLINK, 3), Beep(3, 80)),
    "no_trip": Signal(LedSet(220, 0, 0, LedPattern.SOLID, 3), Beep(1, 600)),
    "not_allowed": Signal(LedSet(220, 0, 0, LedPattern.BLINK, 3), Beep(3, 80)),
}


@dataclass(frozen=True, slots=True)
class BoardingDecision:
    badge: str
    allowed: bool
    reason: Reason
    signal: Signal
    trip: str | None = None
    service_date: str | None = None
    stop: str | None = None
    reservation: str | None = None
    person: str | None = None
    # A rider already let on this trip tapped again: answered, not recorded again.
    repeat: bool = False


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine), metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def stop_at(
    trip: contract.SnapshotTrip, fix: tuple[float, float] | None, radius_m: float = STOP_RADIUS_M
) -> str | None:
    """The trip's stop nearest `fix` if within `radius_m`; None without a fix or a stop."""
    if fix is None or not trip.stops:
        return None
    best = min(trip.stops, key=lambda s: distance_m(fix, (s.lat, s.lon)))
    return best.stop if distance_m(fix, (best.lat, best.lon)) <= radius_m else None


def service_hour(ts: float) -> int:
    """The local (WITA) hour of `ts`, for ridership per hour."""
    return datetime.fromtimestamp(ts, SERVICE_TZ).hour


TripKey = tuple[str, str]  # (trip, service_date)


@dataclass
class _Index:
    """The vehicle sections of one snapshot, indexed for the tap path."""

    trips: list[contract.SnapshotTrip] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    seats: dict[tuple[str, str, str], contract.SnapshotSeat] = field(default_factory=dict)

    @classmethod
    def of(cls, view: SnapshotView) -> _Index:
        trips = sorted(view.body.trips, key=lambda t: (t.start, t.trip))
        return cls(
            trips=trips,
            starts=[t.start for t in trips],
            seats={(s.trip, s.service_date, s.person): s for s in view.body.seats},
        )


class BoardingBook:
    """Who boarded which trip on this vehicle, decided from the current snapshot."""

    def __init__(
        self, *, early_s: float = BOARDING_EARLY_S, late_s: float = BOARDING_LATE_S
    ) -> None:
        self.early_s = early_s
        self.late_s = late_s
        self._view: SnapshotView | None = None
        self._index = _Index()
        # Counted on the node: walk-ons let on per trip, and who is aboard per trip.
        self.walk_ons: dict[TripKey, int] = {}
        self._aboard: dict[TripKey, dict[str, BoardingDecision]] = {}

    @property
    def snapshot(self) -> SnapshotView | None:
        return self._view

    @snapshot.setter
    def snapshot(self, view: SnapshotView | None) -> None:
        self._view = view
        self._index = _Index.of(view) if view is not None else _Index()
        # Trips no longer in the snapshot are over: forget their counts.
        keys = {(t.trip, t.service_date) for t in self._index.trips}
        self.walk_ons = {k: n for k, n in self.walk_ons.items() if k in keys}
        self._aboard = {k: v for k, v in self._aboard.items() if k in keys}

    def running(self, now: float) -> contract.SnapshotTrip | None:
        """The trip running at `now`: of those whose window holds `now`, the latest to start."""
        idx = self._index
        i = bisect.bisect_right(idx.starts, now + self.early_s)
        for trip in reversed(idx.trips[:i]):
            if now <= trip.end + self.late_s:
                return trip
        return None

    def free_places(self, trip: contract.SnapshotTrip) -> int:
        key = (trip.trip, trip.service_date)
        return trip.capacity - trip.reserved - self.walk_ons.get(key, 0)

    def tap(self, badge: str, now: float, fix: tuple[float, float] | None) -> BoardingDecision:
        view = self._view
        person = view.person_for(badge, now) if view is not None else None
        if person is None:
            return BoardingDecision(badge, False, "unknown_badge", SIGNALS["unknown_badge"])
        vehicle = view.body.vehicle if view is not None else None
        if vehicle is not None and vehicle.kind != "shuttle":
            return BoardingDecision(
                badge, False, "not_allowed", SIGNALS["not_allowed"], person=person
            )
        trip = self.running(now)
        if trip is None:
            return BoardingDecision(badge, False, "no_trip", SIGNALS["no_trip"], person=person)
        key = (trip.trip, trip.service_date)
        stop = stop_at(trip, fix)
        aboard = self._aboard.setdefault(key, {})
        before = aboard.get(person)
        if before is not None:
            return BoardingDecision(
                badge, True, before.reason, before.signal, trip.trip, trip.service_date,
                stop, before.reservation, person, repeat=True,
            )  # fmt: skip
        seat = self._index.seats.get((trip.trip, trip.service_date, person))
        if seat is not None:
            decision = BoardingDecision(
                badge, True, "reserved", SIGNALS["reserved"], trip.trip, trip.service_date,
                stop, seat.id, person,
            )  # fmt: skip
        elif self.free_places(trip) > 0:
            self.walk_ons[key] = self.walk_ons.get(key, 0) + 1
            decision = BoardingDecision(
                badge, True, "walk_on", SIGNALS["walk_on"], trip.trip, trip.service_date,
                stop, None, person,
            )  # fmt: skip
        else:
            return BoardingDecision(
                badge, False, "full", SIGNALS["full"], trip.trip, trip.service_date,
                stop, None, person,
            )  # fmt: skip
        aboard[person] = decision
        return decision

    # --- kept across a restart (edge/vehicle.py writes it to the state directory) -----

    def state(self) -> dict[str, Any]:
        return {
            "walk_ons": [[t, d, n] for (t, d), n in self.walk_ons.items()],
            "aboard": [
                [t, d, person, b.reason, b.reservation]
                for (t, d), riders in self._aboard.items()
                for person, b in riders.items()
            ],
        }

    def restore(self, data: Any) -> None:
        """Takes back a `state()`; entries of trips the current snapshot lacks are dropped."""
        if not isinstance(data, dict):
            return
        keys = {(t.trip, t.service_date) for t in self._index.trips}
        try:
            for trip, date, n in data.get("walk_ons", []):
                if (trip, date) in keys:
                    self.walk_ons[(trip, date)] = int(n)
            for trip, date, person, reason, reservation in data.get("aboard", []):
                if (trip, date) in keys and reason in ("reserved", "walk_on"):
                    self._aboard.setdefault((trip, date), {})[person] = BoardingDecision(
                        "", True, reason, SIGNALS[reason], trip, date, None, reservation, person
                    )
        except (TypeError, ValueError):
            log.warning("boarding state ignored: malformed")
