"""The attendance rules (docs/attendance.md), without I/O: which events count as present,
which day they belong to, and what a working day without any of them is.

- Present: a desk check-in, a desk check-out tapped with the badge, or a door decision
  that was granted, each by a badge the person held at that moment. Refused taps
  (at a desk or in the cloud) and refused door decisions never count; a check-out the
  desk made on its own (away timer, release, command) is not the person.
- The day of an event is its calendar day in the time zone of the site it happened in;
  the first check-in is the earliest counted event of that day at that site, the last
  presence the latest one (one event: both are the same instant).
- Working days are Monday to Friday except the holidays of the person's home site.
  A working day without events is `remote` on the agency's remote weekdays, else
  `absent`. A weekend or holiday gives a row only when the person was there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from ruang.site_defaults import DEFAULT_TIMEZONE

MAX_DAYS = 31
Status = Literal["present", "absent", "remote"]
# Desk events that may count, and the only check-out reason that is the person's own tap.
DESK_KINDS = ("checkin", "checkout")
TAPPED_CHECKOUT = "tap"


def desk_event_counts(kind: str, checkout_reason: object) -> bool:
    """Whether a stored desk event (`events.kind`, its payload's `reason`) counts."""
    return kind == "checkin" or (kind == "checkout" and checkout_reason == TAPPED_CHECKOUT)


@dataclass(frozen=True, slots=True)
class Mark:
    """A counted event: who, at which site, when (UTC)."""

    person_id: str
    site_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Calendar:
    """Site time zones and holidays, and the agency's remote weekdays (ISO numbers)."""

    zones: Mapping[str, str] = field(default_factory=dict)
    holidays: Mapping[str, frozenset[date]] = field(default_factory=dict)
    remote_weekdays: frozenset[int] = frozenset()

    def zone(self, site: str | None) -> ZoneInfo:
        return ZoneInfo(self.zones.get(site or "", DEFAULT_TIMEZONE))

    def working(self, site: str | None, day: date) -> bool:
        return day.isoweekday() <= 5 and day not in self.holidays.get(site or "", frozenset())


@dataclass(frozen=True, slots=True)
class Day:
    """One person on one day at one site; the times are site-local."""

    person_id: str
    site_id: str | None
    day: date
    status: Status
    first_check_in: datetime | None = None
    last_presence: datetime | None = None


def days(start: date, end: date) -> list[date]:
    """Every day of [start, end], both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def person_days(
    person_id: str,
    home_site: str | None,
    marks: Iterable[Mark],
    calendar: Calendar,
    start: date,
    end: date,
) -> list[Day]:
    """The person's rows for [start, end], by day then site."""
    seen: dict[tuple[date, str], tuple[datetime, datetime]] = {}
    for mark in marks:
        local = mark.at.astimezone(calendar.zone(mark.site_id))
        key = (local.date(), mark.site_id)
        first, last = seen.get(key, (local, local))
        seen[key] = (min(first, local), max(last, local))
    out: list[Day] = []
    for day in days(start, end):
        here = sorted(site for d, site in seen if d == day)
        for site in here:
            first, last = seen[(day, site)]
            out.append(Day(person_id, site, day, "present", first, last))
        if not here and calendar.working(home_site, day):
            remote = day.isoweekday() in calendar.remote_weekdays
            out.append(Day(person_id, home_site, day, "remote" if remote else "absent"))
    return out
