"""The kiosk's departures board: the next shuttles from the stops near the building, from the
real timetable and seat service, updating without a reload; still nothing personal."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, expect

from tests.dashboards.conftest import SITE, running_ruang, screenshot
from tests.dashboards.test_kiosk import FULL_HD, assert_no_personal_data
from tests.dashboards.test_transport_dispatch import K1_START, publish
from tests.dashboards.transport_helpers import load_rolling_transport

pytestmark = pytest.mark.servers

NEAR = ("KIPP-KEMENKO", "KIPP-SETNEG")  # on K1 and on K2, before their last stop
WITA = ZoneInfo("Asia/Makassar")
LIVE_TIMEOUT = 15_000  # ms: a bound for the stack to settle, not a performance check


async def test_the_board_lists_the_next_departures_and_a_trip_turns_full_without_reload(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path, shuttle_default_capacity=1) as ruang:
        await load_rolling_transport(ruang, datetime.now(UTC), site_stops=NEAR)
        public = (
            await ruang.admin.get("/api/v1/public/availability", params={"site": SITE})
        ).json()
        board = public["shuttles"]
        assert board, public
        assert {d["stop_id"] for d in board} == set(NEAR)
        # Soonest first, none gone yet, and without a live service: the timetable.
        expected = [d["expected_at"] for d in board]
        assert expected == sorted(expected)
        assert all(
            datetime.fromisoformat(e) >= datetime.fromisoformat(public["generated_at"])
            for e in expected
        )
        assert {d["status"] for d in board} == {"scheduled"}
        assert not any(d["full"] for d in board)

        page = await ruang.page(browser, viewport=FULL_HD)
        await page.goto(f"/kiosk?site={SITE}&lang=id&refresh=2")
        rows = page.get_by_test_id("shuttle-table").locator("tbody tr")
        await expect(rows.first).to_be_visible()
        first = board[0]
        row = page.get_by_test_id("shuttle-table").locator(
            f'tr[data-trip="{first["trip"]}"][data-stop="{first["stop_id"]}"]'
        )
        await expect(row).to_contain_text(first["route"])
        await expect(row).to_contain_text(first["stop"])
        await expect(row).to_contain_text("Sesuai jadwal")
        await page.evaluate("window.__ruangMarker = 'still-here'")

        # Someone takes the trip's only seat: on the next refresh the line says full.
        r = await ruang.admin.post(
            "/api/v1/transport/reservations",
            json={
                "trip_id": first["trip"],
                "service_date": first["service_date"],
                "from_stop": first["stop_id"],
                "person_id": "p-ayu",
            },
        )
        assert r.status_code == 201, r.text
        await expect(row).to_have_attribute("data-full", "true", timeout=LIVE_TIMEOUT)
        await expect(row.locator('[data-flag="full"]')).to_have_text("Penuh")
        assert await page.evaluate("window.__ruangMarker") == "still-here"
        await screenshot(page, "kiosk-departures")

        # The reservation is personal; the board is not.
        public = (
            await ruang.admin.get("/api/v1/public/availability", params={"site": SITE})
        ).json()
        assert_no_personal_data(json.dumps(public))
        assert_no_personal_data(await page.content())

        # English: the same board in the other language.
        await page.goto(f"/kiosk?site={SITE}&lang=en&refresh=2")
        await expect(row.locator('[data-flag="full"]')).to_have_text("Full")


async def test_a_late_bus_and_a_cancelled_trip_show_on_the_board_without_reload(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        now = datetime.now(UTC)
        await load_rolling_transport(ruang, now, site_stops=("KIPP-KEMENKO",))
        service_date = (now.astimezone(WITA) - timedelta(hours=3)).strftime("%Y%m%d")
        page = await ruang.page(browser, viewport=FULL_HD)
        await page.goto(f"/kiosk?site={SITE}&lang=id&refresh=2")
        table = page.get_by_test_id("shuttle-table")
        late = table.locator('tr[data-trip="K1-R-8"]')
        gone = table.locator('tr[data-trip="K1-R+5"]')
        await expect(late).to_have_attribute("data-status", "scheduled")
        await expect(gone).to_have_attribute("data-status", "scheduled")
        await page.evaluate("window.__ruangMarker = 'still-here'")

        # The K1 trip that should have left Blok A 8 minutes ago is still standing there:
        # its bus's position makes it late at the building's stop.
        r = await ruang.admin.post(
            "/api/v1/transport/assignments",
            json={"vehicle": "shuttle-01", "trip_id": "K1-R-8", "service_date": service_date},
        )
        assert r.status_code == 201, r.text
        await publish(ruang, "shuttle-01", K1_START, time.time())
        await expect(late).to_have_attribute("data-status", "delayed", timeout=LIVE_TIMEOUT)
        await expect(late.locator('[data-flag="delayed"]')).to_contain_text("Terlambat")
        # The dispatcher cancels the next one.
        r = await ruang.admin.post(
            "/api/v1/transport/cancellations",
            json={"trip_id": "K1-R+5", "service_date": service_date, "reason": "bus mogok"},
        )
        assert r.status_code == 201, r.text
        await expect(gone).to_have_attribute("data-status", "cancelled", timeout=LIVE_TIMEOUT)
        await expect(gone.locator('[data-flag="cancelled"]')).to_have_text("Dibatalkan")
        assert await page.evaluate("window.__ruangMarker") == "still-here"
        # What the board shows is the public API's.
        board = (
            await ruang.admin.get("/api/v1/public/availability", params={"site": SITE})
        ).json()["shuttles"]
        status = {d["trip"]: d["status"] for d in board}
        assert status["K1-R-8"] == "delayed" and status["K1-R+5"] == "cancelled"
        assert "bus mogok" not in json.dumps(board)  # the dispatcher's note stays inside
        await screenshot(page, "kiosk-departures-live")
