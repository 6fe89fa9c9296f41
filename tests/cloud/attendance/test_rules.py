"""The attendance rules without a database: the site's own time zone draws the day line,
remote weekdays and holidays decide the days without events."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cloud.attendance.rules import Calendar, Day, Mark, desk_event_counts, person_days

# Sites in two zones: WITA (UTC+8) and WIB (UTC+7).
CAL = Calendar(
    zones={"ikn": "Asia/Makassar", "jkt": "Asia/Jakarta"},
    holidays={"ikn": frozenset({date(2026, 3, 5)})},
    remote_weekdays=frozenset({3}),
)


def test_the_same_instant_falls_on_the_day_of_the_site_it_happened_in() -> None:
    # 16:30 UTC on Tuesday: 00:30 Wednesday in WITA, 23:30 Tuesday in WIB.
    at = datetime(2026, 3, 3, 16, 30, tzinfo=UTC)
    ikn = person_days("p", "ikn", [Mark("p", "ikn", at)], CAL, date(2026, 3, 3), date(2026, 3, 4))
    jkt = person_days("p", "ikn", [Mark("p", "jkt", at)], CAL, date(2026, 3, 3), date(2026, 3, 4))
    assert [(d.day, d.status, d.site_id) for d in ikn] == [
        (date(2026, 3, 3), "absent", "ikn"),
        (date(2026, 3, 4), "present", "ikn"),
    ]
    assert [(d.day, d.status, d.site_id) for d in jkt] == [
        (date(2026, 3, 3), "present", "jkt"),
        (date(2026, 3, 4), "remote", "ikn"),
    ]
    assert jkt[0].first_check_in is not None and jkt[0].first_check_in.isoformat() == (
        "2026-03-03T23:30:00+07:00"
    )


def test_two_sites_on_one_day_give_one_row_each_with_their_own_first_and_last() -> None:
    marks = [
        Mark("p", "ikn", datetime(2026, 3, 3, 0, 15, tzinfo=UTC)),  # 08:15 WITA
        Mark("p", "jkt", datetime(2026, 3, 3, 6, 0, tzinfo=UTC)),  # 13:00 WIB
        Mark("p", "ikn", datetime(2026, 3, 3, 3, 40, tzinfo=UTC)),  # 11:40 WITA
    ]
    rows = person_days("p", "ikn", marks, CAL, date(2026, 3, 3), date(2026, 3, 3))
    assert [(d.site_id, d.first_check_in, d.last_presence) for d in rows] == [
        ("ikn", marks[0].at, marks[2].at),
        ("jkt", marks[1].at, marks[1].at),
    ]


def test_weekends_and_home_site_holidays_have_rows_only_when_someone_came() -> None:
    # Thu 5 March is a holiday of ikn; Sat 7 and Sun 8 are the weekend.
    came = Mark("p", "ikn", datetime(2026, 3, 7, 1, 0, tzinfo=UTC))
    rows = person_days("p", "ikn", [came], CAL, date(2026, 3, 5), date(2026, 3, 8))
    local = came.at.astimezone(CAL.zone("ikn"))
    assert rows == [
        Day("p", "ikn", date(2026, 3, 6), "absent"),
        Day("p", "ikn", date(2026, 3, 7), "present", local, local),
    ]


def test_only_check_ins_and_tapped_check_outs_count_at_a_desk() -> None:
    assert desk_event_counts("checkin", None)
    assert desk_event_counts("checkout", "tap")
    for reason in ("left", "released", "command"):
        assert not desk_event_counts("checkout", reason)
    assert not desk_event_counts("tap_refused", None)
    assert not desk_event_counts("refused", None)
