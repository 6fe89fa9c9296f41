"""The departures board of a stop: the next scheduled departures with live ETAs and
cancelled/delayed flags, for the kiosk and riders. Public: no personal data.

A departure is "full" when its trip's seat counter (transport_trip_seats) has no seat
left. A departure is "delayed" when its expected departure is at least `DELAYED_S` after the
timetable (the on-time window of on-time performance ends at +5 min; riders are told
earlier). A trip already seen leaving the stop is dropped from the board.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import TRANSPORT_STOPS as STOPS
from cloud.db.tables import TRIP_SEATS
from cloud.errors import NotFound
from cloud.transport import schedule
from cloud.transport.live import LiveService
from cloud.transport.schemas_live import Departure, Departures, DepartureStatus

DELAYED_S = 120
LOOK_BACK_S = 1800  # a late bus may still come for a departure scheduled this long ago


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


async def board(
    conn: AsyncConnection, live: LiveService, stop_id: str, limit: int, now: float
) -> Departures:
    name = await conn.scalar(select(STOPS.c.name).where(STOPS.c.stop_id == stop_id))
    if name is None:
        raise NotFound(f"no stop {stop_id!r}")
    scheduled = await schedule.departures_from(
        conn, stop_id, now - LOOK_BACK_S, limit=limit + 40, horizon_s=86_400
    )
    out: list[Departure] = []
    completed = _completed(live)
    full = await _full_trips(conn, {(d.trip_id, d.service_date) for d in scheduled})
    for d in scheduled:
        key = (d.trip_id, d.service_date)
        cancelled = key in live.cancelled
        tracker = None if cancelled else live.tracker_for_trip(key)
        expected: float | None = None
        if tracker is not None:
            events = {e.stop_sequence: e for e in tracker.stop_events()}
            ev = events.get(d.stop_sequence)
            if ev is not None and ev.departure is not None:
                continue  # it has left this stop
            etas = {e.stop_sequence: e for e in live.etas(tracker.vehicle, now)}
            eta = etas.get(d.stop_sequence)
            expected = eta.departure if eta is not None else None
        elif key in completed:
            continue  # its vehicle finished the trip
        if expected is None and not cancelled and d.departure < now - 60:
            continue  # no vehicle on it and its time has passed
        if cancelled and d.departure < now - 60:
            continue
        live_eta = expected is not None
        if expected is None and not cancelled:
            expected = d.departure
        delay = None if expected is None else round(expected - d.departure)
        delayed = bool(live_eta and delay is not None and delay >= DELAYED_S)
        status: DepartureStatus = (
            "cancelled"
            if cancelled
            else "delayed"
            if delayed
            else "on_time"
            if live_eta
            else "scheduled"
        )
        out.append(
            Departure(
                trip=d.trip_id,
                route=d.route_id,
                headsign=d.headsign,
                service_date=d.service_date,
                stop_id=stop_id,
                stop=name,
                scheduled_at=_utc(d.departure),
                expected_at=None if cancelled or expected is None else _utc(expected),
                delay_s=delay if live_eta else None,
                live=live_eta,
                vehicle=tracker.vehicle if tracker is not None else None,
                status=status,
                full=key in full and not cancelled,
                delayed=delayed,
                cancelled=cancelled,
            )
        )
        if len(out) >= limit:
            break
    return Departures(stop_id=stop_id, departures=out, generated_at=_utc(now))


async def _full_trips(conn: AsyncConnection, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Trips whose seats are all taken (reservations plus walk-ons; cloud/transport/seats)."""
    if not keys:
        return set()
    rows = await conn.execute(
        select(TRIP_SEATS.c.trip_id, TRIP_SEATS.c.service_date).where(
            TRIP_SEATS.c.trip_id.in_(sorted({k[0] for k in keys})),
            TRIP_SEATS.c.confirmed + TRIP_SEATS.c.walk_ons >= TRIP_SEATS.c.capacity,
        )
    )
    return {(r.trip_id, r.service_date) for r in rows} & keys


def _completed(live: LiveService) -> set[tuple[str, str]]:
    done: set[tuple[str, str]] = set()
    for t in live.trackers.values():
        done |= t.completed
    return done
