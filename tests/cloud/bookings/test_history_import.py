"""Importing finished past bookings (POST /bookings/import) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from cloud.db.tables import ADMIN_AUDIT, BOOKINGS
from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers

WITA = ZoneInfo("Asia/Makassar")
PROBLEM = "application/problem+json"


def _day(days_ago: int) -> datetime:
    today = datetime.now(UTC).astimezone(WITA).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def row(
    desk: str, person: str, day: datetime, start: int, end: int, outcome: str
) -> dict[str, Any]:
    return {
        "desk_id": desk,
        "person_id": person,
        "starts_at": (day + timedelta(hours=start)).isoformat(),
        "ends_at": (day + timedelta(hours=end)).isoformat(),
        "outcome": outcome,
    }


async def _counts(cloud: RunningCloud) -> tuple[int, int]:
    async with cloud.app.state.engine.connect() as conn:
        bookings = await conn.scalar(select(func.count()).select_from(BOOKINGS))
        audits = await conn.scalar(
            select(func.count())
            .select_from(ADMIN_AUDIT)
            .where(ADMIN_AUDIT.c.action == "bookings.import")
        )
    return int(bookings or 0), int(audits or 0)


async def test_import_counts_in_no_show_analytics_and_reimport_skips(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    day = _day(3)
    came = row("L1-D01", "p-ayu", day, 9, 12, "completed")
    came["checked_in_at"] = (day + timedelta(hours=9, minutes=5)).isoformat()
    rows = [
        came,
        row("L1-D02", "p-budi", day, 9, 12, "no_show"),
        row("L1-D02", "p-ayu", day, 13, 15, "cancelled"),
    ]
    r = await cloud.http.post("/api/v1/bookings/import", json={"rows": rows})
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 3, "skipped": 0}
    assert await _counts(cloud) == (3, 1)

    r = await cloud.http.get("/api/v1/bookings", params={"desk": "L1-D01"})
    [stored] = r.json()
    assert stored["status"] == "completed" and stored["walk_up"] is False
    r = await cloud.http.get("/api/v1/bookings", params={"desk": "L1-D02"})
    assert sorted(b["status"] for b in r.json()) == ["cancelled", "no_show"]

    r = await cloud.http.get(
        "/api/v1/analytics/utilisation",
        params={
            "from": day.isoformat(),
            "to": (day + timedelta(days=1)).isoformat(),
            "level": "building",
            "bucket": "day",
        },
    )
    assert r.status_code == 200, r.text
    [building] = r.json()["rows"]
    # The completed and the no-show count; the cancelled does not.
    assert (building["bookings"], building["no_shows"]) == (2, 1)

    # The same rows again: nothing new, each reported as skipped.
    r = await cloud.http.post("/api/v1/bookings/import", json={"rows": rows})
    assert r.status_code == 200 and r.json() == {"created": 0, "skipped": 3}
    assert await _counts(cloud) == (3, 2)


async def test_one_bad_row_refuses_the_batch_with_row_errors(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    day = _day(2)
    late = row("L1-D03", "p-budi", day, 9, 12, "no_show")
    late["checked_in_at"] = (day + timedelta(hours=9)).isoformat()
    future = row("L1-D04", "p-ayu", _day(-2), 9, 12, "completed")
    rows = [
        row("L1-D01", "p-ayu", day, 9, 12, "completed"),
        row("NO-SUCH-DESK", "p-ayu", day, 13, 15, "completed"),
        row("L1-D02", "p-nobody", day, 9, 12, "completed"),
        row("L1-D02", "p-budi", day, 14, 13, "completed"),
        late,
        future,
    ]
    r = await cloud.http.post("/api/v1/bookings/import", json={"rows": rows})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    found = {(e["index"], e["field"]) for e in r.json()["errors"]}
    assert found == {
        (1, "desk_id"),
        (2, "person_id"),
        (3, "ends_at"),
        (4, "checked_in_at"),
        (5, "ends_at"),
    }
    assert await _counts(cloud) == (0, 0)


async def test_overlaps_among_rows_and_with_stored_bookings_are_refused(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    day = _day(4)
    first = [row("L1-D01", "p-ayu", day, 9, 12, "completed")]
    assert (
        await cloud.http.post("/api/v1/bookings/import", json={"rows": first})
    ).status_code == 200
    # Against the stored (finished, so outside the exclusion constraint) booking.
    r = await cloud.http.post(
        "/api/v1/bookings/import", json={"rows": [row("L1-D01", "p-budi", day, 11, 14, "no_show")]}
    )
    assert r.status_code == 422
    assert [(e["index"], e["field"]) for e in r.json()["errors"]] == [(0, "starts_at")]
    # Among the rows themselves; a cancelled row held nothing and overlaps nothing.
    rows = [
        row("L1-D02", "p-ayu", day, 9, 12, "completed"),
        row("L1-D02", "p-budi", day, 10, 13, "no_show"),
        row("L1-D02", "p-budi", day, 9, 12, "cancelled"),
    ]
    r = await cloud.http.post("/api/v1/bookings/import", json={"rows": rows})
    assert r.status_code == 422
    assert [(e["index"], e["field"]) for e in r.json()["errors"]] == [(1, "starts_at")]
    assert await _counts(cloud) == (1, 1)


async def test_only_admins_may_import(cloud: RunningCloud, settings: CloudSettings) -> None:
    await seed(cloud, settings)
    rows = [row("L1-D01", "p-ayu", _day(1), 9, 12, "completed")]
    for roles in (("facility_manager",), ("asn",)):
        r = await cloud.http.post(
            "/api/v1/bookings/import",
            json={"rows": rows},
            headers=auth_headers(settings, "p-citra", roles),
        )
        assert r.status_code == 403, (roles, r.text)
    assert await _counts(cloud) == (0, 0)
