"""Desk utilisation reports computed from recorded history, not from estimates.

The history (occupied, sensed and booked intervals per desk, released bookings)
is read by cloud/analytics/history.py; this module only computes. Buckets (hour
or day) follow the wall clock of the desk's site time zone and are clipped to
[from, to), so a partial first or last bucket is measured by its real length; a
`range` bucket is the whole of [from, to) as one row. Released bookings are
counted per bucket of their release time, by reason. Definitions of every
figure are in docs/analytics.md.
"""

from __future__ import annotations

import bisect
import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from cloud.analytics.history import BookingSpan, DeskInfo, History, Interval, Release

# Re-exported so callers written before history.py split off (tests) still find it here.
from cloud.analytics.history import load_history as load_history
from cloud.analytics.schemas import (
    BucketUnit,
    HeatmapCell,
    Level,
    MatrixRow,
    Order,
    ReleaseRow,
    UtilisationRow,
)

# Bounds keep one request from building millions of buckets.
MAX_RANGE = {"hour": timedelta(days=31), "day": timedelta(days=366), "range": timedelta(days=366)}
# Release reasons written by the cloud (autorelease, checkins); anything else is "other".
RELEASE_REASONS = ("no_show", "away", "released_at_desk", "displaced_by_offline_checkin")


# --- buckets and interval arithmetic ----------------------------------------------------


def buckets(start: datetime, end: datetime, tz_name: str, unit: BucketUnit) -> list[Interval]:
    """Wall-clock hours or days of `tz_name` covering [start, end), clipped to it."""
    if unit == "range":
        return [(start.astimezone(UTC), end.astimezone(UTC))] if end > start else []
    tz = ZoneInfo(tz_name)
    local = start.astimezone(tz)
    out: list[Interval] = []
    if unit == "day":
        day = local.date()
        edge = datetime.combine(day, time(0), tz)
        while edge < end:
            day += timedelta(days=1)
            # Midnight to midnight in local time, so a DST day is 23 or 25 h long.
            nxt = datetime.combine(day, time(0), tz)
            out.append((max(edge, start).astimezone(UTC), min(nxt, end).astimezone(UTC)))
            edge = nxt
    else:
        # Local hour boundaries are whole UTC hours apart even in zones with
        # a :30 or :45 offset, so stepping in UTC stays on them.
        edge = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        while edge < end:
            nxt = edge + timedelta(hours=1)
            out.append((max(edge, start).astimezone(UTC), min(nxt, end).astimezone(UTC)))
            edge = nxt
    return [(a, b) for a, b in out if b > a]


def overlap(a: Interval, b: Interval) -> float:
    """Seconds two half-open intervals share."""
    return max(0.0, (min(a[1], b[1]) - max(a[0], b[0])).total_seconds())


def _split(
    intervals: Iterable[Interval],
    bounds: Sequence[Interval],
) -> dict[int, list[Interval]]:
    """Each interval cut at bucket edges, by bucket index."""
    starts = [b[0] for b in bounds]
    out: dict[int, list[Interval]] = defaultdict(list)
    for a, b in intervals:
        i = max(0, bisect.bisect_right(starts, a) - 1)
        while i < len(bounds) and bounds[i][0] < b:
            lo, hi = max(a, bounds[i][0]), min(b, bounds[i][1])
            if hi > lo:
                out[i].append((lo, hi))
            i += 1
    return out


def concurrency(intervals: Sequence[Interval]) -> tuple[int, float, float]:
    """(peak count, count-weighted seconds, seconds with count ≥ 1) of overlapping intervals."""
    # Ends sort before starts at the same instant: [a, b) and [b, c) never overlap.
    points = sorted(
        [(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda p: (p[0], p[1])
    )
    peak = count = 0
    weighted = busy = 0.0
    previous: datetime | None = None
    for ts, delta in points:
        if previous is not None and count > 0:
            span = (ts - previous).total_seconds()
            weighted += span * count
            busy += span
        count += delta
        peak = max(peak, count)
        previous = ts
    return peak, weighted, busy


def _groups(history: History, level: Level) -> dict[str, list[DeskInfo]]:
    groups: dict[str, list[DeskInfo]] = defaultdict(list)
    for desk in history.desks:
        key = desk.entity(level)
        # Desks not placed in the layout have no zone/floor/building to count toward.
        if key is not None:
            groups[key].append(desk)
    return dict(sorted(groups.items()))


def _pct(part: float, whole: float) -> float:
    return round(min(100.0, 100.0 * part / whole), 2) if whole > 0 else 0.0


# --- reports ------------------------------------------------------------------------------


def utilisation(history: History, level: Level, unit: BucketUnit) -> list[UtilisationRow]:
    rows: list[UtilisationRow] = []
    for entity, desks in _groups(history, level).items():
        tz = desks[0].tz
        bounds = buckets(history.start, history.end, tz, unit)
        ids = {d.id for d in desks}
        per_bucket = _split((iv for d in desks for iv in history.occupied.get(d.id, ())), bounds)
        starts = [b[0] for b in bounds]
        booked: dict[int, list[BookingSpan]] = defaultdict(list)
        for bk in history.bookings:
            # Walk-ups are check-ins recorded as bookings: they cannot be no-shows.
            if bk.desk in ids and not bk.walk_up and history.start <= bk.start < history.end:
                booked[bisect.bisect_right(starts, bk.start) - 1].append(bk)
        for i, (lo, hi) in enumerate(bounds):
            spans = per_bucket.get(i, [])
            peak, weighted, busy = concurrency(spans)
            occupied = sum((b - a).total_seconds() for a, b in spans)
            bks = booked.get(i, [])
            no_shows = sum(1 for bk in bks if bk.status == "no_show")
            rows.append(
                UtilisationRow(
                    entity=entity,
                    bucket_start=lo.astimezone(ZoneInfo(tz)),
                    bucket_end=hi.astimezone(ZoneInfo(tz)),
                    desks=len(desks),
                    occupied_hours=round(occupied / 3600, 4),
                    utilisation_pct=_pct(occupied, len(desks) * (hi - lo).total_seconds()),
                    peak_occupancy=peak,
                    avg_occupancy_when_occupied=round(weighted / busy, 4) if busy > 0 else None,
                    bookings=len(bks),
                    no_shows=no_shows,
                    no_show_rate=round(no_shows / len(bks), 4) if bks else None,
                )
            )
    return rows


def order_rows(rows: list[UtilisationRow], order: Order, limit: int | None) -> list[UtilisationRow]:
    """`utilisation`: least used first (ties by entity, then time), so the top of the
    list is what a manager could give up; `entity`: the report's own order."""
    if order == "utilisation":
        rows = sorted(rows, key=lambda r: (r.utilisation_pct, r.entity, r.bucket_start))
    return rows if limit is None else rows[:limit]


def releases(
    desks: Sequence[DeskInfo],
    released: Sequence[Release],
    start: datetime,
    end: datetime,
    level: Level,
    unit: BucketUnit,
) -> list[ReleaseRow]:
    """Released bookings per entity and bucket of their release time, by reason.

    Every bucket gets a row, zeros included, so a series over days has no gaps.
    """
    groups = _groups(History(start, end, list(desks)), level)
    rows: list[ReleaseRow] = []
    for entity, members in groups.items():
        tz = members[0].tz
        bounds = buckets(start, end, tz, unit)
        starts = [b[0] for b in bounds]
        ids = {d.id for d in members}
        counts: list[dict[str, int]] = [defaultdict(int) for _ in bounds]
        for r in released:
            if r.desk not in ids:
                continue
            i = bisect.bisect_right(starts, r.at) - 1
            if 0 <= i < len(bounds) and r.at < bounds[i][1]:
                reason = r.reason if r.reason in RELEASE_REASONS else "other"
                counts[i][reason or "other"] += 1
        for (lo, hi), c in zip(bounds, counts, strict=True):
            rows.append(
                ReleaseRow(
                    entity=entity,
                    bucket_start=lo.astimezone(ZoneInfo(tz)),
                    bucket_end=hi.astimezone(ZoneInfo(tz)),
                    released=sum(c.values()),
                    no_show=c["no_show"],
                    away=c["away"],
                    released_at_desk=c["released_at_desk"],
                    displaced_by_offline_checkin=c["displaced_by_offline_checkin"],
                    other=c["other"],
                )
            )
    return rows


def _used(history: History, desk: str) -> list[Interval]:
    # A desk is in use when someone is checked in or the sensor sees someone.
    return [*history.occupied.get(desk, ()), *history.sensed.get(desk, ())]


def booking_sensor_matrix(history: History, level: Level) -> list[MatrixRow]:
    by_desk: dict[str, list[Interval]] = defaultdict(list)
    for bk in history.bookings:
        # A walk-up booking is the use itself, not a booking made ahead.
        if not bk.walk_up:
            by_desk[bk.desk].append((bk.start, bk.end))
    rows: list[MatrixRow] = []
    for entity, desks in _groups(history, level).items():
        counts = {
            "used_as_booked": 0,
            "used_without_booking": 0,
            "booked_but_not_used": 0,
            "unused": 0,
        }
        cells = 0
        for desk in desks:
            used = _used(history, desk.id)
            for day in buckets(history.start, history.end, desk.tz, "day"):
                cells += 1
                booked = [b for b in by_desk.get(desk.id, ()) if overlap(b, day) > 0]
                in_day = [u for u in used if overlap(u, day) > 0]
                booked_in_day = [(max(b[0], day[0]), min(b[1], day[1])) for b in booked]
                if any(overlap(u, b) > 0 for u in in_day for b in booked_in_day):
                    counts["used_as_booked"] += 1
                elif booked:
                    counts["booked_but_not_used"] += 1
                elif in_day:
                    counts["used_without_booking"] += 1
                else:
                    counts["unused"] += 1
        rows.append(MatrixRow(entity=entity, desk_days=cells, **counts))
    return rows


def heatmap(history: History) -> tuple[int, list[HeatmapCell]]:
    occupied = [[0.0] * 24 for _ in range(7)]
    capacity = [[0.0] * 24 for _ in range(7)]
    for desk in history.desks:
        tz = ZoneInfo(desk.tz)
        bounds = buckets(history.start, history.end, desk.tz, "hour")
        per_bucket = _split(history.occupied.get(desk.id, ()), bounds)
        for i, (lo, hi) in enumerate(bounds):
            local = lo.astimezone(tz)
            wd, hour = local.weekday(), local.hour
            capacity[wd][hour] += (hi - lo).total_seconds()
            occupied[wd][hour] += sum((b - a).total_seconds() for a, b in per_bucket.get(i, ()))
    cells = [
        HeatmapCell(
            weekday=wd,
            hour=h,
            utilisation_pct=_pct(occupied[wd][h], capacity[wd][h]) if capacity[wd][h] > 0 else None,
        )
        for wd in range(7)
        for h in range(24)
    ]
    return len(history.desks), cells


def to_csv(rows: Sequence[BaseModel], model: type[BaseModel]) -> str:
    """Rows as CSV with a header; the values are the JSON ones (null → empty)."""
    out = io.StringIO()
    names = list(model.model_fields)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow(["" if data[n] is None else data[n] for n in names])
    return out.getvalue()
