"""Local access decisions: allow-list, validity, revocation, door lists and weekly schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from edge.devices.access_policy import (
    AccessPolicy,
    AllowList,
    BadgeEntry,
    StaleAllowList,
    TimeWindow,
    WeeklySchedule,
)

WITA = timezone(timedelta(hours=8))  # Asia/Makassar has no DST
OFFICE = WeeklySchedule(
    windows=(TimeWindow(days=("mon", "tue", "wed", "thu", "fri"), start="07:00", end="18:00"),)
)
BADGE = "04A1B2C3"


def _policy(*entries: BadgeEntry, schedule: WeeklySchedule = OFFICE) -> AccessPolicy:
    return AccessPolicy(AllowList(version=1, entries=entries), {"door-a": schedule})


def _at(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=WITA)


# 2026-11-23 is a Monday.
MONDAY_9 = _at(2026, 11, 23, 9)


def test_enrolled_badge_inside_schedule_is_allowed() -> None:
    decision = _policy(BadgeEntry(badge=BADGE, person="Ayu")).decide("door-a", BADGE, MONDAY_9)
    assert decision.granted and decision.reason == "allowed"


def test_unknown_badge_is_denied() -> None:
    decision = _policy().decide("door-a", BADGE, MONDAY_9)
    assert (decision.granted, decision.reason) == (False, "unknown badge")


def test_revoked_badge_is_denied_even_inside_schedule() -> None:
    policy = _policy(BadgeEntry(badge=BADGE, person="Ayu", revoked=True))
    assert policy.decide("door-a", BADGE, MONDAY_9).reason == "badge revoked"


def test_schedule_start_is_inclusive_and_end_exclusive() -> None:
    policy = _policy(BadgeEntry(badge=BADGE, person="Ayu"))
    assert policy.decide("door-a", BADGE, _at(2026, 11, 23, 7, 0)).granted
    assert policy.decide("door-a", BADGE, _at(2026, 11, 23, 6, 59)).reason == "outside schedule"
    assert policy.decide("door-a", BADGE, _at(2026, 11, 23, 17, 59)).granted
    assert policy.decide("door-a", BADGE, _at(2026, 11, 23, 18, 0)).reason == "outside schedule"


def test_weekend_is_outside_a_weekday_schedule() -> None:
    policy = _policy(BadgeEntry(badge=BADGE, person="Ayu"))
    assert policy.decide("door-a", BADGE, _at(2026, 11, 22, 9)).reason == "outside schedule"


def test_schedule_is_evaluated_in_building_time_not_utc() -> None:
    policy = _policy(BadgeEntry(badge=BADGE, person="Ayu"))
    # 23:30 UTC Sunday is 07:30 Monday in Makassar: open.
    assert policy.decide("door-a", BADGE, datetime(2026, 11, 22, 23, 30, tzinfo=UTC)).granted
    # 10:30 UTC Monday is 18:30 in Makassar: closed, though 10:30 would be inside in UTC.
    late = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    assert policy.decide("door-a", BADGE, late).reason == "outside schedule"


def test_overnight_window_belongs_to_the_day_it_starts() -> None:
    night = WeeklySchedule(windows=(TimeWindow(days=("fri",), start="22:00", end="06:00"),))
    policy = _policy(BadgeEntry(badge=BADGE, person="Guard"), schedule=night)
    assert policy.decide("door-a", BADGE, _at(2026, 11, 27, 23)).granted  # Friday night
    assert policy.decide("door-a", BADGE, _at(2026, 11, 28, 5, 59)).granted  # Saturday early
    assert not policy.decide("door-a", BADGE, _at(2026, 11, 28, 6)).granted
    assert not policy.decide("door-a", BADGE, _at(2026, 11, 27, 5)).granted  # Friday early


def test_window_until_midnight_covers_the_last_minute() -> None:
    schedule = WeeklySchedule(windows=(TimeWindow(days=("mon",), start="20:00", end="24:00"),))
    policy = _policy(BadgeEntry(badge=BADGE, person="Ayu"), schedule=schedule)
    assert policy.decide("door-a", BADGE, _at(2026, 11, 23, 23, 59)).granted
    assert not policy.decide("door-a", BADGE, _at(2026, 11, 24, 0, 0)).granted


def test_validity_window_is_from_inclusive_until_exclusive() -> None:
    entry = BadgeEntry(
        badge=BADGE,
        person="Visitor",
        valid_from=_at(2026, 11, 23, 8),
        valid_until=_at(2026, 11, 23, 12),
    )
    policy = _policy(entry)
    assert policy.decide("door-a", BADGE, _at(2026, 11, 23, 7, 59)).reason == "badge not yet valid"
    assert policy.decide("door-a", BADGE, _at(2026, 11, 23, 8)).granted
    assert policy.decide("door-a", BADGE, _at(2026, 11, 23, 12)).reason == "badge expired"


def test_naive_validity_times_are_read_as_building_time() -> None:
    entry = BadgeEntry(badge=BADGE, person="V", valid_until=datetime(2026, 11, 23, 12, 0))
    policy = _policy(entry)
    # 03:59 UTC = 11:59 WITA: still valid; 04:00 UTC = 12:00 WITA: expired.
    assert policy.decide("door-a", BADGE, datetime(2026, 11, 23, 3, 59, tzinfo=UTC)).granted
    four = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    assert policy.decide("door-a", BADGE, four).reason == "badge expired"


def test_badge_limited_to_other_doors_is_denied_here() -> None:
    policy = _policy(BadgeEntry(badge=BADGE, person="Ayu", doors=("door-b",)))
    assert policy.decide("door-a", BADGE, MONDAY_9).reason == "not allowed at this door"


def test_door_without_schedule_and_unreadable_cards_are_denied() -> None:
    policy = _policy(BadgeEntry(badge=BADGE, person="Ayu"))
    assert policy.decide("door-z", BADGE, MONDAY_9).reason == "door has no schedule"
    assert policy.decide("door-a", None, MONDAY_9).reason == "unsupported card format"


def test_lower_case_uids_in_the_allow_list_match_upper_case_reads() -> None:
    policy = _policy(BadgeEntry(badge="04a1b2c3", person="Ayu"))
    assert policy.decide("door-a", BADGE, MONDAY_9).granted


def test_newer_snapshot_replaces_the_whole_list_and_older_is_refused() -> None:
    policy = _policy(BadgeEntry(badge=BADGE, person="Ayu"))
    newer = AllowList(version=2, entries=(BadgeEntry(badge="0A0B0C0D", person="Budi"),))
    assert policy.replace_allow_list(newer)
    assert policy.version == 2
    assert policy.decide("door-a", BADGE, MONDAY_9).reason == "unknown badge"
    assert policy.decide("door-a", "0A0B0C0D", MONDAY_9).granted
    assert not policy.replace_allow_list(newer)  # same version: no-op
    with pytest.raises(StaleAllowList):
        policy.replace_allow_list(AllowList(version=1))


def test_duplicate_badges_and_empty_windows_are_config_errors() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        AllowList(
            version=1,
            entries=(BadgeEntry(badge=BADGE, person="A"), BadgeEntry(badge=BADGE, person="B")),
        )
    with pytest.raises(ValidationError, match="empty"):
        TimeWindow(days=("mon",), start="08:00", end="08:00")


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        _policy().decide("door-a", BADGE, datetime(2026, 11, 23, 9))
