"""My shuttle (/transport/me) on a 390 px phone: find a trip from my stop, reserve, join the
waitlist of a full trip, cancel (the waitlist moves up), watch my bus come live, request a
pool car."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from tests.dashboards.conftest import Ruang, running_ruang, screenshot
from tests.dashboards.test_transport_dispatch import K1_START, LIVE_TIMEOUT, publish
from tests.dashboards.transport_helpers import load_rolling_transport, load_sample_transport

pytestmark = pytest.mark.servers

WITA = ZoneInfo("Asia/Makassar")
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
NO_SERVICE = {"20261225", "20270101", "20260817"}


def next_weekday() -> str:
    """A service day after today (WITA) with the sample's weekday timetable."""
    day = datetime.now(WITA).date() + timedelta(days=1)
    while day.weekday() >= 5 or day.strftime("%Y%m%d") in NO_SERVICE:
        day += timedelta(days=1)
    return day.isoformat()


async def open_my_shuttle(ruang: Ruang, browser: Browser, person: str) -> Page:
    page = await ruang.page(browser, person, "asn", **PHONE)
    await page.goto("/transport/me?refresh=2")
    await expect(page.locator("#t-stop option").first).to_be_attached()
    return page


async def search(page: Page, day: str) -> None:
    await page.select_option("#t-stop", "HA-BLOK-A")
    await page.select_option("#t-to", "KIPP-TERM")
    await page.fill("#t-date", day)
    await page.get_by_role("button", name="Cari", exact=True).click()
    await expect(page.get_by_test_id("trip-results").locator("li").first).to_be_visible()


def trip(page: Page, trip_id: str):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("trip-results").locator(f'li[data-trip="{trip_id}"]')


def reservation(page: Page, trip_id: str):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("my-reservations").locator(f'li[data-trip="{trip_id}"]')


async def test_reserve_waitlist_and_cancel_on_a_phone(tmp_path: Path, browser: Browser) -> None:
    # One seat per trip, so the second rider meets a full trip.
    async with running_ruang(tmp_path, shuttle_default_capacity=1) as ruang:
        await load_sample_transport(ruang)
        day = next_weekday()
        ayu = await open_my_shuttle(ruang, browser, "p-ayu")
        await expect(ayu.get_by_test_id("my-reservations")).to_contain_text(
            "Belum ada reservasi kursi."
        )
        await search(ayu, day)
        first = trip(ayu, "K1-0-0600")
        await expect(first).to_contain_text("Berangkat 06.00 dari Hunian ASN Blok A")
        await expect(first).to_contain_text("Terminal KIPP Plaza Seremoni")
        await expect(first.get_by_test_id("trip-seats")).to_have_text("1 dari 1 kursi kosong")
        await first.get_by_role("button", name="Pesan kursi").click()
        mine = reservation(ayu, "K1-0-0600")
        await expect(mine.get_by_test_id("reservation-state")).to_have_text("Kursi terkonfirmasi")
        await expect(first.get_by_test_id("trip-seats")).to_have_text("Penuh")
        # Nothing is wider than the phone.
        assert await ayu.evaluate("document.documentElement.scrollWidth") <= 390
        await screenshot(ayu, "my-shuttle-phone")

        budi = await open_my_shuttle(ruang, browser, "p-budi")
        await search(budi, day)
        full = trip(budi, "K1-0-0600")
        await expect(full.get_by_test_id("trip-seats")).to_have_text("Penuh")
        await full.get_by_role("button", name="Masuk daftar tunggu").click()
        waiting = reservation(budi, "K1-0-0600")
        await expect(waiting.get_by_test_id("reservation-state")).to_have_text(
            "Daftar tunggu nomor 1"
        )

        # Ayu cancels: her reservation goes, and Budi moves up into the seat.
        await mine.get_by_role("button", name="Batalkan").click()
        await expect(mine).to_have_count(0)
        await expect(ayu.get_by_test_id("my-reservations")).to_contain_text(
            "Belum ada reservasi kursi."
        )
        await budi.reload()
        await expect(waiting.get_by_test_id("reservation-state")).to_have_text(
            "Kursi terkonfirmasi"
        )
        # The API agrees with what the page shows.
        listed = await budi.request.get("/api/v1/me/transport/reservations?active=true")
        assert [(r["trip_id"], r["status"]) for r in await listed.json()] == [
            ("K1-0-0600", "confirmed")
        ]


async def request_car(page: Page, day: str, purpose: str) -> None:
    await page.fill("#c-purpose", purpose)
    await page.fill("#c-destination", "Kantor Gubernur Kalimantan Timur, Samarinda")
    await page.fill("#c-start", f"{day}T09:00")
    await page.fill("#c-end", f"{day}T12:30")
    await page.get_by_role("button", name="Ajukan pemesanan").click()


async def test_pool_car_requests_take_the_free_cars_then_say_none_is_left(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        await load_sample_transport(ruang)
        day = next_weekday()
        booked: list[str] = []
        for person in ("p-ayu", "p-budi"):
            page = await open_my_shuttle(ruang, browser, person)
            await request_car(page, day, f"Rapat koordinasi ({person})")
            await expect(page.get_by_test_id("car-status")).to_have_text(
                "Pemesanan diajukan: Menunggu persetujuan."
            )
            mine = page.get_by_test_id("my-car-bookings").locator("li")
            await expect(mine).to_have_count(1)
            await expect(mine.get_by_test_id("car-state")).to_have_text("Menunggu persetujuan")
            await expect(mine).to_contain_text(f"Rapat koordinasi ({person})")
            booked.append(await mine.inner_text())
        # Each got a different car (the two pool cars), each sees only their own request.
        assert "car-01" in booked[0] and "car-02" in booked[1], booked
        third = await open_my_shuttle(ruang, browser, "p-siti")
        await request_car(third, day, "Kunjungan lapangan")
        await expect(third.get_by_test_id("car-status")).to_have_text(
            "Tidak ada mobil dinas yang kosong pada waktu itu."
        )
        assert await third.evaluate("document.documentElement.scrollWidth") <= 390

        # Ayu cancels hers: the car is free again for that time.
        ayu = await open_my_shuttle(ruang, browser, "p-ayu")
        await expect(ayu.get_by_test_id("my-car-bookings").locator("li")).to_have_count(1)
        await ayu.get_by_test_id("my-car-bookings").get_by_role("button", name="Batalkan").click()
        await expect(ayu.get_by_test_id("my-car-bookings")).to_contain_text(
            "Belum ada pemesanan mobil."
        )
        await request_car(third, day, "Kunjungan lapangan")
        await expect(third.get_by_test_id("car-status")).to_have_text(
            "Pemesanan diajukan: Menunggu persetujuan."
        )
        await expect(third.get_by_test_id("my-car-bookings")).to_contain_text("car-01")


async def test_my_bus_comes_live_from_its_position_without_a_reload(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        now = datetime.now(UTC)
        await load_rolling_transport(ruang, now)
        # The rolling timetable's service day (tests/dashboards/transport_helpers.py).
        service_date = (now.astimezone(WITA) - timedelta(hours=3)).strftime("%Y%m%d")
        r = await ruang.admin.post(
            "/api/v1/transport/reservations",
            json={
                "trip_id": "K1-R+5",
                "service_date": service_date,
                "from_stop": "HA-BLOK-A",
                "person_id": "p-ayu",
            },
        )
        assert r.status_code == 201, r.text
        page = await open_my_shuttle(ruang, browser, "p-ayu")
        mine = reservation(page, "K1-R+5")
        eta = mine.get_by_test_id("my-eta")
        # No bus on the trip yet: the timetable's time, said as such.
        await expect(eta).to_have_attribute("data-live", "false")
        await expect(eta).to_contain_text("menurut jadwal")
        await page.evaluate("window.__ruangMarker = 'still-here'")

        # The dispatcher puts shuttle-01 on it and its node reports it at the first stop.
        r = await ruang.admin.post(
            "/api/v1/transport/assignments",
            json={"vehicle": "shuttle-01", "trip_id": "K1-R+5", "service_date": service_date},
        )
        assert r.status_code == 201, r.text
        await publish(ruang, "shuttle-01", K1_START, time.time())
        await expect(eta).to_have_attribute("data-live", "true", timeout=LIVE_TIMEOUT)
        await expect(mine).to_contain_text("Bus shuttle-01 menuju halte Anda")
        await expect(eta).to_contain_text("Tiba sekitar")
        assert await page.evaluate("window.__ruangMarker") == "still-here"
        await screenshot(page, "my-shuttle-live")
