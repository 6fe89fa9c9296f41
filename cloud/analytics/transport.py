"""Transport reports: ridership, load factor, on-time performance, no-shows, pool-car use.

Computed only from what was recorded, never from the timetable alone:
boardings are the vehicles' `boarding` events (allowed ones, each event id once),
departures are the stop departures the live tracker detected from positions,
reservations are those the seat service decided at departure (used or no-show),
pool-car use is the trip log from pick-up to return. Reading them from the
database is cloud/analytics/transport_history.py; this module only computes, so
every definition (docs/analytics.md, "Transport") is testable on plain records.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cloud.analytics.transport_schemas import PoolCarRow, RidershipBy, RidershipRow, RouteRow

# A departure is on time from 1 minute early to 5 minutes late (inclusive).
EARLY_S = -60.0
LATE_S = 300.0
# Pool cars are available on working days, 07:00-17:00 in the site's zone.
WORK_START = time(7, 0)
WORK_END = time(17, 0)
MAX_RANGE = timedelta(days=366)
ALL = "all"


@dataclass(frozen=True, slots=True)
class Boarding:
    ts: datetime
    route: str
    trip: str
    service_date: str
    stop: str | None


@dataclass(frozen=True, slots=True)
class TripRun:
    """A trip that ran on a service day, with the capacity of the vehicle that ran it."""

    route: str
    trip: str
    service_date: str
    capacity: int


@dataclass(frozen=True, slots=True)
class StopDeparture:
    route: str
    trip: str
    stop: str
    scheduled: datetime
    actual: datetime

    @property
    def delay_s(self) -> float:
        return (self.actual - self.scheduled).total_seconds()


@dataclass(frozen=True, slots=True)
class ReservationOutcome:
    route: str
    no_show: bool


@dataclass(frozen=True, slots=True)
class CarTrip:
    vehicle: str
    start: datetime
    end: datetime | None  # not returned yet: counted up to the end of the range (or now)
    distance_m: float


@dataclass
class TransportHistory:
    """Everything the reports read for one range, already limited to it."""

    start: datetime
    end: datetime
    timezone: str
    route_names: dict[str, str] = field(default_factory=dict)
    stop_names: dict[str, str] = field(default_factory=dict)
    boardings: list[Boarding] = field(default_factory=list)
    runs: list[TripRun] = field(default_factory=list)
    departures: list[StopDeparture] = field(default_factory=list)
    reservations: list[ReservationOutcome] = field(default_factory=list)
    cars: dict[str, str | None] = field(default_factory=dict)  # vehicle id -> plate
    car_trips: list[CarTrip] = field(default_factory=list)


def _rate(part: int | float, whole: int | float) -> float | None:
    return round(part / whole, 4) if whole else None


def on_time(departure: StopDeparture) -> bool:
    return EARLY_S <= departure.delay_s <= LATE_S


def ridership(history: TransportHistory, by: RidershipBy) -> list[RidershipRow]:
    """Boardings per route, per stop, or per hour of the day (all 24 hours listed)."""
    zone = ZoneInfo(history.timezone)
    if by == "hour":
        hours = Counter(b.ts.astimezone(zone).hour for b in history.boardings)
        return [
            RidershipRow(key=f"{h:02d}", name=f"{h:02d}:00", boardings=hours[h]) for h in range(24)
        ]
    if by == "route":
        counts = Counter(b.route for b in history.boardings)
        names = history.route_names
    else:
        counts = Counter(b.stop or "" for b in history.boardings)
        names = history.stop_names
    # Most used first; ties by id so the order is stable between the API and CSV.
    keys = sorted(counts, key=lambda k: (-counts[k], k))
    return [RidershipRow(key=k, name=names.get(k, k), boardings=counts[k]) for k in keys]


def _route_row(
    route: str,
    name: str,
    runs: Iterable[TripRun],
    boardings: Iterable[Boarding],
    departures: Iterable[StopDeparture],
    reservations: Iterable[ReservationOutcome],
) -> RouteRow:
    run_list = list(runs)
    ran = {(r.trip, r.service_date) for r in run_list}
    # Load factor counts the boardings of the trips whose seats are counted.
    boarded = sum(1 for b in boardings if (b.trip, b.service_date) in ran)
    seats = sum(r.capacity for r in run_list)
    dep = list(departures)
    good = sum(1 for d in dep if on_time(d))
    res = list(reservations)
    missed = sum(1 for r in res if r.no_show)
    return RouteRow(
        route=route,
        name=name,
        trips=len(run_list),
        boardings=boarded,
        seats=seats,
        load_factor=_rate(boarded, seats),
        departures=len(dep),
        on_time=good,
        on_time_rate=_rate(good, len(dep)),
        reservations=len(res),
        no_shows=missed,
        no_show_rate=_rate(missed, len(res)),
    )


def routes(history: TransportHistory) -> tuple[list[RouteRow], RouteRow]:
    """Per route (and all routes): load factor, on-time performance, no-show rate."""
    ids = sorted(
        set(history.route_names)
        | {r.route for r in history.runs}
        | {d.route for d in history.departures}
        | {r.route for r in history.reservations}
    )
    runs = defaultdict(list)
    for run in history.runs:
        runs[run.route].append(run)
    rows = [
        _route_row(
            route,
            history.route_names.get(route, route),
            runs[route],
            (b for b in history.boardings if b.route == route),
            (d for d in history.departures if d.route == route),
            (r for r in history.reservations if r.route == route),
        )
        for route in ids
    ]
    totals = _route_row(
        ALL, ALL, history.runs, history.boardings, history.departures, history.reservations
    )
    return rows, totals


def working_windows(
    start: datetime, end: datetime, tz_name: str
) -> list[tuple[datetime, datetime]]:
    """The working hours (Mon-Fri, WORK_START-WORK_END local) inside [start, end)."""
    zone = ZoneInfo(tz_name)
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    out: list[tuple[datetime, datetime]] = []
    while day <= last:
        if day.weekday() < 5:
            a = max(datetime.combine(day, WORK_START, zone), start)
            b = min(datetime.combine(day, WORK_END, zone), end)
            if b > a:
                out.append((a.astimezone(UTC), b.astimezone(UTC)))
        day += timedelta(days=1)
    return out


def _overlap_s(a: tuple[datetime, datetime], windows: list[tuple[datetime, datetime]]) -> float:
    return sum(max(0.0, (min(a[1], w[1]) - max(a[0], w[0])).total_seconds()) for w in windows)


def pool_cars(history: TransportHistory, now: datetime) -> tuple[list[PoolCarRow], PoolCarRow]:
    """Per pool car (and all): hours out within working hours over the working hours."""
    windows = working_windows(history.start, history.end, history.timezone)
    available_h = sum((b - a).total_seconds() for a, b in windows) / 3600
    until = min(history.end, now)
    per: dict[str, list[CarTrip]] = {v: [] for v in history.cars}
    for trip in history.car_trips:
        per.setdefault(trip.vehicle, []).append(trip)

    def row(vehicle: str, plate: str | None, trips: list[CarTrip], cars: int) -> PoolCarRow:
        used_s = sum(_overlap_s((t.start, t.end or until), windows) for t in trips)
        hours = available_h * cars
        return PoolCarRow(
            vehicle=vehicle,
            plate=plate,
            trips=len(trips),
            hours_used=round(used_s / 3600, 2),
            hours_available=round(hours, 2),
            utilisation=_rate(used_s / 3600, hours),
            distance_km=round(sum(t.distance_m for t in trips) / 1000, 2),
        )

    rows = [row(v, history.cars.get(v), per[v], 1) for v in sorted(per)]
    totals = row(ALL, None, history.car_trips, len(per))
    return rows, totals
