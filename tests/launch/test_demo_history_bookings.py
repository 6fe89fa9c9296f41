"""The demo history's bookings made ahead (launch/demo_history.py `booked_ahead`): some roster
people booked and came (their check-in becomes the booking's), some booked and did not come."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from launch.demo_history import booked_ahead
from ruang import contract
from simulators.history import FloorPlan, day_messages, past_weekdays

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
