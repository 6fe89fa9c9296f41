"""The demo history's bookings made ahead (launch/demo_history.py `booked_ahead`): some roster
people booked and came (their check-in becomes the booking's), some booked and did not come."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from cloud.buildings.layout import SAMPLE_LAYOUT, load_layout
from cloud.settings import CloudSettings
from launch import devservers
from launch.demo import roster_for_today, roster_path
from launch.demo_history import _with_bookings, booked_ahead, floor_plans
from ruang import contract
from simulators.history import FloorPlan, day_messages, history, past_weekdays
from tests.cloud.conftest import serving, unique
from tests.helpers import auth_headers

TZ = "Asia/Makassar"
PLANS = [FloorPlan(f"n{f}", tuple(f"F{f}-D{d:02d}" for d in range(1, 21))) for f in (1, 2)]
PEOPLE = {f"p-{i:02d}": f"04A1B2{i:02X}" for i in range(30)}


def test_booked_ahead_gives_came_and_no_show_rows_that_replace_their_events() -> None:
    outcomes: list[str] = []
    for day in past_weekdays(date(2026, 12, 7), 2):
        messages = day_messages(day, PLANS, list(PEOPLE.values()), tz=TZ, seed=13)
        rows, kept = booked_ahead(messages, PEOPLE, TZ)
        assert (rows, kept) == booked_ahead(messages, PEOPLE, TZ)  # the same day decides alike
        for row in rows:
            outcomes.append(row["outcome"])
            starts, ends = (datetime.fromisoformat(row[k]) for k in ("starts_at", "ends_at"))
            assert starts.date() == day and starts < ends and row["person_id"] in PEOPLE
            desk_events = [
                m for m in kept if contract.is_event(m) and getattr(m, "desk", "") == row["desk_id"]
            ]
            # The booking stands for its check-in/out: no walk-up beside it.
            assert desk_events == []
            if row["outcome"] == "completed":
                came = datetime.fromisoformat(row["checked_in_at"])
                assert starts.astimezone(ZoneInfo(TZ)).hour - 1 <= came.hour and came < ends
                # Presence stays: the desk was sensed in use.
                assert any(getattr(m, "desk", "") == row["desk_id"] for m in kept)
            else:
                assert all(getattr(m, "desk", "") != row["desk_id"] for m in kept)
        # Everyone else is still there, walk-ups as before.
        assert len(kept) < len(messages) or not rows
    assert outcomes.count("completed") > outcomes.count("no_show") > 0


async def test_past_days_get_bookings_and_no_shows_per_floor_and_a_rerun_changes_nothing(
    database_url: str, mosquitto_server: devservers.Mosquitto, tmp_path: Path
) -> None:
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-demo-booked"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        layout_file=SAMPLE_LAYOUT,
        flush_interval_s=0.05,
    )
    layout = load_layout(SAMPLE_LAYOUT)
    zone = ZoneInfo(layout.site.timezone)
    today = datetime.now(zone).date()
    days = past_weekdays(today, 1)[-3:]
    async with serving(settings) as (base_url, _task):
        admin = auth_headers(settings)
        async with httpx.AsyncClient(base_url=base_url, headers=admin, timeout=60) as http:
            roster, people = roster_for_today(
                roster_path().read_text(encoding="utf-8"), datetime.now(zone)
            )
            r = await http.post(
                "/api/v1/people/import",
                content=roster.encode(),
                headers={"content-type": "text/csv"},
            )
            r.raise_for_status()
            messages = history(
                days, floor_plans(layout), list(people.values()), tz=layout.site.timezone, seed=13
            )
            token = admin["Authorization"].removeprefix("Bearer ")
            first = await _with_bookings(
                mosquitto_server.url, messages, (base_url, token), people, layout.site.timezone
            )
            params = {
                "from": datetime.combine(days[0], datetime.min.time(), zone).isoformat(),
                "to": datetime.combine(today, datetime.min.time(), zone).isoformat(),
                "level": "floor",
                "bucket": "range",
            }

            async def figures() -> dict[str, tuple[int, int]]:
                got = await http.get("/api/v1/analytics/utilisation", params=params)
                assert got.status_code == 200, got.text
                return {
                    row["entity"]: (row["bookings"], row["no_shows"]) for row in got.json()["rows"]
                }

            report = await figures()
            print("demo past days, (bookings made ahead, no-shows) per floor:", report)
            assert set(report) == {"A1-L1", "A1-L2", "A1-L3"}
            assert all(booked > 0 for booked, _ in report.values()), report
            assert sum(no_show for _, no_show in report.values()) > 0, report
            # Again: the bookings are skipped, the messages dropped as duplicates.
            again = await _with_bookings(
                mosquitto_server.url, messages, (base_url, token), people, layout.site.timezone
            )
            assert again.messages == first.messages
            assert await figures() == report
