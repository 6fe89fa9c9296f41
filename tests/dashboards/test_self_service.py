"""ASN self-service in a real browser: find and book a desk, manage bookings, QR check-in."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, expect

from cloud.bookings.qrcheckin import CheckinKeys
from simulators.deskunit import LedState
from tests.dashboards.conftest import Ruang, running_ruang, screenshot
from tests.helpers import eventually

pytestmark = pytest.mark.servers

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def open_me(page: Page) -> None:
    await page.goto("/me")
    # me.js marks the body once the tree, the first search and "my bookings" are shown.
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")


async def map_desk(ruang: Ruang, desk: str) -> dict[str, Any]:
    r = await ruang.admin.get("/api/v1/floors/A1-L1/map")
    assert r.status_code == 200, r.text
    return next(d for d in r.json()["desks"] if d["id"] == desk)


def checkin_path(ruang: Ruang, desk: str, key: str | None = None) -> str:
    """The path+query the desk's QR code leads to (its host is `public_base_url`)."""
    url = urlsplit(CheckinKeys.from_settings(ruang.settings).url(desk))
    query = url.query if key is None else f"k={key}"
    return f"{url.path}?{query}"


async def test_an_asn_finds_a_desk_with_a_feature_books_it_and_cancels_it(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, "p-ayu", "asn", viewport={"width": 1280, "height": 900})
        await open_me(page)
        await page.get_by_label("Lantai", exact=True).select_option("A1-L1")
        await page.get_by_label("Zona", exact=True).select_option("A1-L1-Z1")
        await page.get_by_label("Meja berdiri").check()
        await page.get_by_role("button", name="Cari", exact=True).click()

        free = page.get_by_test_id("free-desks")
        # Zone 1 desks with a standing desk (sample layout): D01, D05, D06 — and only those.
        await expect(free.locator("li.desk-card")).to_have_count(3)
        for desk in ("L1-D01", "L1-D05", "L1-D06"):
            await expect(free.locator(f'li[data-desk="{desk}"]')).to_be_visible()

        await page.get_by_role("button", name="Pesan L1-D05").click()
        status = page.locator("#booking-status")
        await expect(status).to_contain_text("Meja L1-D05 dipesan")
        mine = page.locator('#mine li[data-desk="L1-D05"]')
        await expect(mine).to_contain_text("Dipesan")
        # Booked for that time: no longer offered as free.
        await expect(free.locator('li[data-desk="L1-D05"]')).to_have_count(0)
        await screenshot(page, "self-service")

        r = await ruang.admin.get("/api/v1/bookings", params={"desk": "L1-D05"})
        [booking] = r.json()
        assert booking["person_id"] == "p-ayu" and booking["status"] == "booked"

        await mine.get_by_role("button", name="Batalkan").click()
        await expect(page.locator("#mine-status")).to_contain_text("dibatalkan")
        await expect(page.locator('#mine li[data-desk="L1-D05"]')).to_have_count(0)
        await expect(page.locator("#mine")).to_contain_text("Belum ada pemesanan")
        r = await ruang.admin.get("/api/v1/bookings", params={"desk": "L1-D05"})
        assert r.json()[0]["status"] == "cancelled"


async def test_a_booking_made_on_a_phone_shows_on_the_managers_floor_map(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        # The facility manager has the floor map open in her own browser the whole time.
        manager = await ruang.page(browser, "p-siti", "facility_manager")
        await manager.goto("/map?building=A1&floor=A1-L1")
        manager_cell = manager.locator('.floor-svg .desk[data-id="L1-D03"]')
        await expect(manager_cell).to_have_attribute("data-state", "free")

        page = await ruang.page(browser, "p-budi", "asn", **PHONE)
        await open_me(page)
        # "Start now": the map shows a desk as booked only while its booking covers now.
        await page.get_by_role("button", name="Mulai sekarang").click()
        await page.get_by_label("Lantai", exact=True).select_option("A1-L1")
        await page.get_by_role("button", name="Cari", exact=True).click()
        free = page.get_by_test_id("free-desks")
        # Budi (Kementerian Keuangan) is not offered the zones reserved for other agencies.
        await expect(free.locator('li[data-desk="L1-D03"]')).to_be_visible()
        await expect(free.locator('li[data-desk="L1-D07"]')).to_have_count(0)
        await page.get_by_role("button", name="Pesan L1-D03").click()
        await expect(page.locator("#booking-status")).to_contain_text("Meja L1-D03 dipesan")
        await expect(page.locator('#mine li[data-desk="L1-D03"]')).to_contain_text("Dipesan")
        # Phone layout: nothing wider than the screen.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        await screenshot(page, "self-service-phone")

        # Pushed to the open map: no reload on the manager's side.
        await expect(manager_cell).to_have_attribute("data-state", "booked")
        await expect(manager_cell).to_have_attribute("aria-label", re.compile("Budi Santoso"))
        desk = await map_desk(ruang, "L1-D03")
        assert desk["state"] == "booked"
        assert desk["occupant"] == "Budi Santoso"  # the manager's map names who booked


async def test_qr_check_in_on_a_phone_after_signing_in_turns_the_desk_green(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path, desks=6) as ruang:
        r = await ruang.admin.get("/api/v1/desks/L1-D05/qr.svg")
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
        # Decoding a QR image is out of scope; the same key and URL rendered by the
        # server's own function give the very same SVG, so the code holds that URL.
        keys = CheckinKeys.from_settings(ruang.settings)
        assert keys.svg("L1-D05") == r.content
        path = checkin_path(ruang, "L1-D05")

        # A phone that is not signed in goes through the sign-in and comes back.
        page = await ruang.page(browser, **PHONE)
        await page.goto(path)
        await expect(page).to_have_url(
            f"{ruang.base_url}/login?next=%2Fcheckin%2FL1-D05%3Fk%3D{keys.key('L1-D05')}"
        )
        await page.select_option("#person", "p-budi")
        await page.get_by_role("button", name="Masuk").click()
        await expect(page).to_have_url(f"{ruang.base_url}{path}")
        await expect(page.get_by_test_id("checkin-desk")).to_have_text("Meja L1-D05")
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")

        button = page.get_by_role("button", name="Check-in di sini")
        box = await button.bounding_box()
        assert box is not None and box["height"] >= 44  # a thumb-sized target
        await button.click()
        await expect(page.get_by_test_id("checkin-success")).to_contain_text("Anda sudah check-in")
        await expect(page.locator("#checkin-result")).to_contain_text("Meja L1-D05 milik Anda")
        await screenshot(page, "qr-checkin")

        r = await ruang.admin.get("/api/v1/bookings", params={"desk": "L1-D05"})
        [booking] = r.json()
        assert booking["person_id"] == "p-budi" and booking["status"] == "checked_in"
        assert booking["walk_up"] is True
        # Checked in; "away" when the simulated presence sensor reports nobody there.
        assert (await map_desk(ruang, "L1-D05"))["state"] in ("checked_in", "away")

        def green(led: LedState) -> bool:
            return led.g > 0 and led.r == 0 and led.b == 0

        sim = ruang.sims["L1-D05"]

        async def turned_green() -> bool:
            return any(green(led) for led in sim.led_history)

        # The history, not the current colour: the snapshot that follows the check-in
        # repaints the desk (today dim blue, see the report), after the green command.
        await eventually(turned_green, timeout=15, what="green LED on L1-D05")


async def test_a_wrong_or_missing_code_is_refused_with_a_clear_message(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, "p-budi", "asn", **PHONE)
        await page.goto(checkin_path(ruang, "L1-D05", key="aaaaaaaaaaaaaaaa"))
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        await page.get_by_role("button", name="Check-in di sini").click()
        await expect(page.get_by_role("alert")).to_contain_text("Kode check-in tidak cocok")
        await expect(page.get_by_test_id("checkin-success")).to_have_count(0)

        await page.goto("/checkin/L1-D05")
        await expect(page.get_by_role("alert")).to_contain_text("Pindai lagi kode QR")
        await expect(page.get_by_role("button", name="Check-in di sini")).to_be_disabled()

        r = await ruang.admin.get("/api/v1/bookings", params={"desk": "L1-D05"})
        assert r.json() == []


async def test_a_desk_booked_by_someone_else_shows_the_conflict_without_their_name(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        now = datetime.now(UTC)
        r = await ruang.admin.post(
            "/api/v1/bookings",
            json={
                "desk_id": "L1-D03",
                "person_id": "p-ayu",
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(hours=2)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text

        page = await ruang.page(browser, "p-budi", "asn", **PHONE)
        await page.goto(checkin_path(ruang, "L1-D03"))
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        await page.get_by_role("button", name="Check-in di sini").click()
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("dipesan orang lain sampai pukul")
        await expect(page.get_by_role("link", name="Cari meja lain")).to_be_visible()
        body = await page.locator("main").inner_text()
        assert "Ayu" not in body and "p-ayu" not in body

        r = await ruang.admin.get("/api/v1/bookings", params={"desk": "L1-D03"})
        [held] = r.json()
        assert held["person_id"] == "p-ayu" and held["status"] == "booked"


async def test_a_person_downloads_their_data_from_self_service(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, "p-ayu", "asn", viewport={"width": 1280, "height": 900})
        await open_me(page)
        await expect(page.get_by_role("heading", name="Data pribadi saya")).to_be_visible()
        async with page.expect_download() as started:
            await page.get_by_role("link", name="Unduh data saya (JSON)").click()
        download = await started.value
        assert download.suggested_filename == "ruang-data-p-ayu.json"
        body = json.loads(Path(await download.path()).read_text(encoding="utf-8"))
        assert body["person_id"] == "p-ayu"
        [person] = body["tables"]["people"]
        assert person["id"] == "p-ayu" and "badges" in body["tables"]
