"""Weekly schedules resolved into absolute windows: site time zone, overnight, holidays, merging."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from cloud.access.rights import merge, windows_of
from cloud.access.schemas import GroupCreate, ScheduleWindow

WITA = ZoneInfo("Asia/Makassar")  # UTC+8, no DST
# Monday 2026-12-07 00:00 WITA .. Wednesday 00:00 WITA.
START = datetime(2026, 12, 7, tzinfo=WITA)
END = datetime(2026, 12, 9, tzinfo=WITA)


def ts(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 12, day, hour, minute, tzinfo=WITA).timestamp()


def w(days: list[str], start: str, end: str) -> ScheduleWindow:
    return ScheduleWindow.model_validate({"days": days, "start": start, "end": end})


def test_office_hours_become_one_window_per_listed_day_in_site_time() -> None:
    got = windows_of([w(["mon", "tue"], "07:00", "19:00")], WITA, set(), START, END)
    assert got == [(ts(7, 7), ts(7, 19)), (ts(8, 7), ts(8, 19))]
    # 07:00 WITA is 23:00 UTC the day before.
    assert datetime.fromtimestamp(got[0][0], UTC).hour == 23


def test_a_holiday_takes_out_the_windows_starting_on_it_but_not_the_night_before() -> None:
    schedule = [w(["sun", "mon", "tue"], "22:00", "06:00")]
    got = windows_of(schedule, WITA, {date(2026, 12, 7)}, START, END)
    # Sunday's night shift runs into the Monday holiday; Monday's does not start.
    assert got == [(ts(7, 0), ts(7, 6)), (ts(8, 22), END.timestamp())]


def test_windows_are_clipped_to_the_period_and_a_whole_day_joins_up() -> None:
    start = datetime(2026, 12, 7, 12, tzinfo=WITA)
    got = windows_of([w(["mon", "tue"], "00:00", "24:00")], WITA, set(), start, END)
    assert got == [(start.timestamp(), END.timestamp())]
    assert windows_of([w(["sat"], "08:00", "12:00")], WITA, set(), START, END) == []


def test_overlapping_windows_of_two_grants_merge() -> None:
    assert merge([(5.0, 9.0), (1.0, 3.0), (2.0, 4.0), (9.0, 10.0)]) == [(1.0, 4.0), (5.0, 10.0)]


def test_schedules_and_groups_are_validated() -> None:
    with pytest.raises(ValidationError):
        w(["mon"], "08:00", "08:00")
    with pytest.raises(ValidationError):
        w(["monday"], "08:00", "09:00")
    with pytest.raises(ValidationError):
        w(["mon"], "08:00", "24:30")
    with pytest.raises(ValidationError):
        GroupCreate.model_validate({"site_id": "s", "name": "x", "rule": "agency"})
    with pytest.raises(ValidationError):
        GroupCreate.model_validate(
            {"site_id": "s", "name": "x", "rule": "role", "value": "asn", "members": ["p-1"]}
        )
