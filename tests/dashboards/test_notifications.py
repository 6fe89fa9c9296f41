"""The notification bell in the dashboards' header, in Chromium under the strict CSP."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.cloud.booking_helpers import booking, slot
from tests.dashboards.conftest import running_ruang, screenshot, wait_in_page

pytestmark = pytest.mark.servers


async def test_the_bell_counts_lists_and_marks_a_booking_confirmation_read(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        r = await ruang.admin.post("/api/v1/bookings", json=booking("L1-D01", "p-ayu", slot(1)))
        assert r.status_code == 201, r.text
        r = await ruang.admin.post("/api/v1/bookings", json=booking("L1-D02", "p-ayu", slot(2)))
        assert r.status_code == 201, r.text

        page = await ruang.page(browser, "p-ayu")
        await page.goto("/me")
        bell = page.get_by_test_id("notif-bell")
        await wait_in_page(
            page, "() => document.getElementById('notif-bell').dataset.unread === '2'"
        )
        await expect(page.get_by_test_id("notif-count")).to_have_text("2")
        await bell.click()
        await expect(bell).to_have_attribute("aria-expanded", "true")
        items = page.get_by_test_id("notif-list").locator("li.notif-item")
        await expect(items).to_have_count(2)
        # Newest first, in the page's language.
        await expect(items.first).to_contain_text("Pemesanan meja L1-D02 dikonfirmasi")
        await screenshot(page, "notifications_bell", full_page=False)

        await items.first.get_by_role("button", name="Tandai dibaca").click()
        await expect(page.get_by_test_id("notif-count")).to_have_text("1")
        await expect(items.first).to_have_class("notif-item read")
        await page.get_by_role("button", name="Tandai semua dibaca").click()
        await expect(page.get_by_test_id("notif-count")).to_be_hidden()
        await page.keyboard.press("Escape")
        await expect(page.locator("#notif-panel")).to_be_hidden()

        # English pages show the same notifications in English.
        await page.goto("/me?lang=en")
        await page.get_by_test_id("notif-bell").click()
        await expect(
            page.get_by_test_id("notif-list").locator("li.notif-item").first
        ).to_contain_text("Desk L1-D02 booked")


async def test_preferences_are_changed_from_the_bell_panel(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, "p-ayu")
        await page.goto("/me?lang=en")
        await page.get_by_test_id("notif-bell").click()
        await page.get_by_text("Notification settings").click()
        reminders = page.get_by_role("checkbox", name="Check-in reminders")
        await expect(reminders).to_be_checked()
        await reminders.uncheck()
        await page.select_option("#notif-lang", "en")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator("#notif-prefs-status")).to_have_text("Settings saved.")

        mine = {"Authorization": f"Bearer {ruang.token('p-ayu', 'asn')}"}
        r = await ruang.admin.get("/api/v1/me/notification-preferences", headers=mine)
        assert r.json()["language"] == "en"
        assert r.json()["email_off_kinds"] == ["booking_reminder"]
        assert r.json()["email_enabled"] is True
