"""The room panel at the door, in Chromium: now/next, book now, check-in, offline reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, expect

from tests.dashboards.conftest import running_ruang, screenshot, wait_in_page

pytestmark = pytest.mark.servers

ROOM = "A1-L1-R1"
FREE_ROOM = "A1-L1-R2"


async def _panel_path(admin: object, room: str) -> str:
    r = await admin.get(f"/api/v1/rooms/{room}/panel-url")  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    url = urlsplit(r.json()["panel_url"])
    return f"{url.path}?{url.query}"


async def test_panel_shows_the_meeting_without_names_and_books_and_checks_in(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        now = datetime.now(UTC).replace(microsecond=0)
        r = await ruang.admin.post(
            "/api/v1/room-bookings",
            json={
                "room_id": ROOM, "person_id": "p-budi", "title": "Rapat anggaran Keuangan",
                "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat(),
            },
        )  # fmt: skip
        assert r.status_code == 201, r.text
        page = await ruang.page(browser, viewport={"width": 1280, "height": 800})
        await page.goto(await _panel_path(ruang.admin, ROOM))
        await expect(page.get_by_test_id("panel-room")).to_have_text("Ruang Rapat 1.1")
        await expect(page.get_by_test_id("panel-status")).to_have_attribute("data-state", "busy")
        await expect(page.get_by_test_id("panel-state")).to_have_text("Dipakai")
        # Another agency's meeting: times only, no title, no organiser.
        await expect(page.get_by_test_id("panel-now")).to_contain_text("Rapat,")
        body = await page.locator("body").inner_text()
        assert "anggaran" not in body and "Budi" not in body and "p-budi" not in body
        # Busy now: no booking on the spot; the meeting can be checked in.
        await expect(page.get_by_test_id("book-15")).to_be_disabled()
        await page.get_by_test_id("panel-checkin").click()
        await expect(page.get_by_test_id("panel-message")).to_have_text(
            "Check-in berhasil. Selamat rapat."
        )
        stored = (await ruang.admin.get("/api/v1/room-bookings", params={"room": ROOM})).json()
        assert stored[0]["status"] == "checked_in"
        await screenshot(page, "room-panel-busy", full_page=False)

        free = await ruang.page(browser, viewport={"width": 1280, "height": 800})
        await free.goto(await _panel_path(ruang.admin, FREE_ROOM))
        await expect(free.get_by_test_id("panel-state")).to_have_text("Kosong")
        await expect(free.get_by_test_id("panel-free-until")).to_have_text(
            "Kosong sampai akhir hari"
        )
        await free.get_by_test_id("book-30").click()
        await expect(free.get_by_test_id("panel-state")).to_have_text("Dipakai")
        made = (await ruang.admin.get("/api/v1/room-bookings", params={"room": FREE_ROOM})).json()
        assert len(made) == 1 and made[0]["walk_up"] is True
        length = datetime.fromisoformat(made[0]["ends_at"]) - datetime.fromisoformat(
            made[0]["starts_at"]
        )
        assert length == timedelta(minutes=30)

        # A wrong key opens nothing.
        wrong = await free.goto(f"/panel/{FREE_ROOM}?k=aaaaaaaaaaaaaaaa")
        assert wrong is not None and wrong.status == 404


async def test_panel_keeps_reading_offline_from_its_cache_and_shows_how_old_it_is(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        soon = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
        r = await ruang.admin.post(
            "/api/v1/room-bookings",
            json={
                "room_id": ROOM, "person_id": "p-ayu", "starts_at": soon.isoformat(),
                "ends_at": (soon + timedelta(minutes=30)).isoformat(),
            },
        )  # fmt: skip
        assert r.status_code == 201, r.text
        context = await ruang.context(browser, viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        await page.clock.install()
        await page.goto(await _panel_path(ruang.admin, ROOM))
        await expect(page.get_by_test_id("panel-state")).to_have_text("Kosong")
        await expect(page.get_by_test_id("panel-free-until")).to_contain_text("Kosong sampai")
        await expect(page.get_by_test_id("panel-updated")).to_have_text(
            "Terakhir diperbarui 0 menit lalu"
        )

        await context.set_offline(True)
        # 25 minutes pass without the network: the cached day says the meeting runs now.
        await page.clock.fast_forward("25:00")
        await page.clock.run_for(6000)
        await expect(page.get_by_test_id("panel-state")).to_have_text("Dipakai")
        await wait_in_page(
            page,
            "() => Number(document.querySelector('[data-testid=panel-updated]')"
            ".dataset.minutes) >= 25",
        )
        updated = page.get_by_test_id("panel-updated")
        await expect(updated).to_have_class("panel-updated stale")
        await expect(page.get_by_test_id("book-15")).to_be_disabled()
        await screenshot(page, "room-panel-offline", full_page=False)

        # A reload while still offline has no page; the cache is what a new load reads first.
        cached = await page.evaluate(f"localStorage.getItem('ruang.panel.{ROOM}')")
        assert cached is not None and '"room_id":"A1-L1-R1"' in cached

        await context.set_offline(False)
        await page.clock.run_for(25_000)
        await expect(updated).to_have_text("Terakhir diperbarui 0 menit lalu")
        await expect(updated).to_have_class("panel-updated")
        await context.close()
