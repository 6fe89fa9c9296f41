"""Riders tapping their badges at a shuttle's (or pool car's) door, from a scenario.

A scenario is a list of `RiderTap`s: when (seconds from its start, on the
clock of the run, real or accelerated), at which stop the vehicle stands, which
badge, at which reader. `play` runs one against a door reader that lives on a
pty and speaks the desk-unit protocol (`door_reader()`: a `DeskUnitSimulator`
with NFC, LED and buzzer), moving the vehicle to each tap's stop first through
a `place` callback: `ParkedGps` here parks a `GpsSimulator` at the stop; the
shuttle simulator can drive there instead. Tests and the demo share it.

`seeded_day` builds a reproducible scenario from a seed: riders with and
without reservations at every stop of a trip, a few unknown badges, and a
repeat tap, so every boarding outcome appears. `taps_along` times riders on a
scheduled trip (`cloud.transport.plan.TripPlan`, what the shuttle simulator
drives): each taps while the shuttle dwells at their stop, so a `place` that
waits for the shuttle simulator to reach the stop plays them as they would
happen on the road.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cloud.transport.plan import TripPlan
from firmware_bridge.deskunit import Capability
from simulators.deskunit import ALL_CAPABILITIES, DeskUnitSimulator
from simulators.gps import GpsSimulator, distance_m


@dataclass(frozen=True, slots=True)
class StopPlace:
    stop: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class RiderTap:
    at_s: float  # seconds from the scenario's start
    stop: str | None  # where the vehicle stands; None = between stops
    badge: str  # upper-case hex card UID
    reader: str = "door-1"


def door_reader(serial: str = "RU-DR-000001") -> DeskUnitSimulator:
    """A door reader on a fresh pty: a desk unit's NFC and LED, plus a buzzer."""
    return DeskUnitSimulator(serial, capabilities=ALL_CAPABILITIES | Capability.BUZZER)


class ParkedGps:
    """A GNSS receiver simulator whose vehicle is parked at one stop at a time."""

    def __init__(self, stops: Sequence[StopPlace], *, time_factor: float = 20.0) -> None:
        if len(stops) < 2:
            raise ValueError("at least two stops")
        self.stops = {s.stop: s for s in stops}
        route = [(s.lat, s.lon) for s in stops]
        # Distance along the (closed) route to each stop, to park the simulator there.
        self._along: dict[str, float] = {}
        total = 0.0
        for i, s in enumerate(stops):
            self._along[s.stop] = total
            total += distance_m(route[i], route[(i + 1) % len(route)])
        self._between = distance_m(route[0], route[1]) / 2
        self.gps = GpsSimulator(route, speed_kmh=0.0, time_factor=time_factor)

    @property
    def path(self) -> str:
        return self.gps.path

    def park(self, stop: str | None) -> tuple[float, float]:
        """Moves the vehicle to `stop` (None: half-way between the first two); its position."""
        self.gps.travelled_m = self._along[stop] if stop is not None else self._between
        lat, lon, _ = self.gps.position()
        return lat, lon


async def play(
    scenario: Sequence[RiderTap],
    readers: dict[str, DeskUnitSimulator],
    *,
    start: float,
    place: Callable[[str | None], Awaitable[None]],
    set_clock: Callable[[float], None],
    decided: Callable[[int], Awaitable[None]],
) -> int:
    """Plays `scenario` in order; returns the number of taps.

    For each tap: the vehicle is moved (`place`), the run's clock set to the tap's
    time (`set_clock`, for an accelerated run), the badge tapped on the reader's
    pty, and `decided(n)` awaited until the node has decided n taps, so the next
    tap's clock never overtakes this one's decision.
    """
    where: str | object | None = object()
    for n, tap in enumerate(sorted(scenario, key=lambda t: t.at_s), start=1):
        if tap.stop != where:
            await place(tap.stop)
            where = tap.stop
        set_clock(start + tap.at_s)
        await readers[tap.reader].tap(tap.badge)
        await decided(n)
    return len(scenario)


def badge_of(i: int) -> str:
    """The card UID of rider number i (4 bytes, upper-case hex)."""
    return f"04{i:06X}"


def seeded_day(
    seed: int,
    trips: Sequence[tuple[float, float, Sequence[str]]],
    *,
    riders: int,
    unknown: int = 2,
) -> list[RiderTap]:
    """Taps of `riders` riders (badges `badge_of(0..riders-1)`) over `trips`.

    `trips` are (start offset, end offset, stop ids) of each trip, in seconds
    from the scenario's start. Each rider boards one trip at one of its stops
    (not the last), a few badges are unknown, and one rider taps twice.
    """
    rng = random.Random(seed)
    taps: list[RiderTap] = []
    for i in range(riders):
        start, end, stops = trips[rng.randrange(len(trips))]
        k = rng.randrange(max(1, len(stops) - 1))
        # Riders tap at their stop, at the time the vehicle stands there.
        span = (end - start) / max(1, len(stops) - 1)
        at = start + k * span + rng.uniform(0, min(60.0, span / 2))
        taps.append(RiderTap(round(at, 1), stops[k], badge_of(i)))
    for j in range(unknown):
        start, _, stops = trips[j % len(trips)]
        taps.append(RiderTap(start + 5.0 + j, stops[0], f"DEAD{j:04X}"))
    if taps:
        first = taps[0]
        taps.append(RiderTap(first.at_s + 2.0, first.stop, first.badge))
    return sorted(taps, key=lambda t: (t.at_s, t.badge))


def taps_along(
    plan: TripPlan, seed: int, riders: Sequence[str], *, reader: str = "door-1"
) -> list[RiderTap]:
    """Each badge in `riders` boards `plan` at a random stop but the last, while the
    shuttle stands there (between its scheduled arrival and departure, at least a
    few seconds after arriving); times in seconds from the trip's first departure."""
    rng = random.Random(seed)
    boarding_stops = plan.stops[:-1] or plan.stops
    taps = []
    for badge in riders:
        stop = boarding_stops[rng.randrange(len(boarding_stops))]
        dwell = max(4.0, stop.departure - stop.arrival)
        at = stop.arrival - plan.start + rng.uniform(1.0, dwell - 1.0)
        taps.append(RiderTap(round(at, 1), stop.stop_id, badge, reader))
    return sorted(taps, key=lambda t: (t.at_s, t.badge))
