"""The live floor map (/map): live cells, names by role, keyboard, filters, a big floor."""

from __future__ import annotations

from pathlib import Path

import aiomqtt
import pytest
from playwright.async_api import Browser, Page, expect

from bench.dashboards import DESKS, FLOOR, write_big_floor_layout
from ruang import contract
from ruang.mqtt_url import parse_broker_url
from tests.cloud.map_helpers import book_now
from tests.dashboards.conftest import (
    BADGES,
    DEMO_NODE,
    ROSTER,
    Ruang,
    running_ruang,
    screenshot,
    wait_in_page,
)

pytestmark = pytest.mark.servers

NIPS = [line.split(",")[-1] for line in ROSTER.strip().splitlines()[1:]]
LIVE_TIMEOUT = 10_000  # ms: a bound for a real stack to settle, not a performance check


def desk(page: Page, desk_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'.floor-svg .desk[data-id="{desk_id}"]')


async def open_map(
    ruang: Ruang,
    browser: Browser,
    person: str,
    role: str,
    query: str = "floor=A1-L1",
    **options: object,
) -> Page:
    """The map signed in as `person`, drawn and subscribed to the floor's stream."""
    page = await ruang.page(browser, person, role, **options)
    await page.goto(f"/map?{query}")
    await expect(page.locator(".floor-svg .desk").first).to_be_visible()
    await expect(page.get_by_test_id("map-live")).to_have_attribute("data-live", "open")
    return page


async def test_a_badge_tap_turns_the_desk_checked_in_without_a_reload(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path, desks=1) as ruang:
        page = await open_map(ruang, browser, "p-siti", "facility_manager")
        cell = desk(page, "L1-D01")
        await expect(cell).to_have_attribute("data-state", "free")
        # A marker on the window dies with any navigation or reload.
        await page.evaluate("window.__ruangMarker = 'still-here'")

        await ruang.sims["L1-D01"].tap(BADGES["p-ayu"])  # a walk-up at a free desk

        await expect(cell).to_have_attribute("data-state", "checked_in", timeout=LIVE_TIMEOUT)
        assert await page.evaluate("window.__ruangMarker") == "still-here"
        await expect(cell).to_have_attribute(
            "aria-label", "Meja L1-D01, Hadir (check-in), Ayu Lestari"
        )
        await expect(cell.locator(".letter")).to_have_text("H")
        legend = page.get_by_test_id("map-legend")
        await expect(legend.locator('[data-state="checked_in"] .count')).to_have_text("1")
        zone_row = page.get_by_test_id("map-zone-counts").locator('tr[data-zone="A1-L1-Z1"]')
        await expect(zone_row.locator('td[data-state="checked_in"]')).to_have_text("1")
        await screenshot(page, "map")


async def test_a_booking_made_through_the_api_shows_on_an_open_map(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await open_map(ruang, browser, "p-siti", "facility_manager")
        await page.evaluate("window.__ruangMarker = 'still-here'")
        cell = desk(page, "L1-D03")
        await expect(cell).to_have_attribute("data-state", "free")

        await book_now(ruang.admin, "L1-D03", "p-budi")

        await expect(cell).to_have_attribute("data-state", "booked", timeout=LIVE_TIMEOUT)
        await expect(cell).to_have_attribute("aria-label", "Meja L1-D03, Dipesan, Budi Santoso")
        await expect(
            page.get_by_test_id("map-legend").locator('[data-state="booked"] .count')
        ).to_have_text("1")
        assert await page.evaluate("window.__ruangMarker") == "still-here"


async def test_a_room_sensor_reading_changes_the_room_on_an_open_map(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await open_map(ruang, browser, "p-siti", "facility_manager")
        await page.evaluate("window.__ruangMarker = 'still-here'")
        room = page.locator('.floor-svg .room[data-id="A1-L1-R1"]')
        await expect(room).to_have_attribute("data-state", "unknown")

        target = parse_broker_url(ruang.broker.url)
        async with aiomqtt.Client(target.host, target.port) as client:
            # Occupied with no booking: the map says "in use, not booked".
            for present, state, said in (
                (True, "in_use_not_booked", "Ruang terpakai tanpa pemesanan"),
                (False, "free", "Ruang kosong"),
            ):
                msg = contract.RoomPresence(
                    node=DEMO_NODE, room="A1-L1-R1", present=present, sensor="A1-L1-R1-occupancy"
                )
                await client.publish(contract.topic_for(msg), contract.encode(msg))
                await expect(room).to_have_attribute("data-state", state, timeout=LIVE_TIMEOUT)
                await expect(room).to_have_attribute(
                    "aria-label", f"Ruang Rapat 1.1: {said}, kapasitas 8"
                )
        assert await page.evaluate("window.__ruangMarker") == "still-here"


async def test_technicians_see_no_names_and_facility_managers_do(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        await book_now(ruang.admin, "L1-D03", "p-budi")

        tech = await open_map(ruang, browser, "p-joko", "technician")
        cell = desk(tech, "L1-D03")
        await expect(cell).to_have_attribute("data-state", "booked")
        await expect(cell).to_have_attribute("aria-label", "Meja L1-D03, Dipesan")
        await cell.click()
        panel = tech.get_by_test_id("map-panel")
        await expect(panel.get_by_test_id("map-timeline").locator("li")).not_to_have_count(0)
        html = await tech.content()
        assert "Budi" not in html
        assert not any(nip in html for nip in NIPS)

        manager = await open_map(ruang, browser, "p-siti", "facility_manager")
        cell = desk(manager, "L1-D03")
        await expect(cell).to_have_attribute("aria-label", "Meja L1-D03, Dipesan, Budi Santoso")
        await cell.click()
        panel = manager.get_by_test_id("map-panel")
        await expect(panel).to_contain_text("Budi Santoso")
        await expect(panel.get_by_test_id("map-timeline")).to_contain_text("Budi Santoso")
        html = await manager.content()
        assert not any(nip in html for nip in NIPS)


async def test_tab_to_a_desk_and_enter_opens_its_timeline(tmp_path: Path, browser: Browser) -> None:
    async with running_ruang(tmp_path) as ruang:
        await book_now(ruang.admin, "L1-D01", "p-ayu")
        page = await open_map(ruang, browser, "p-siti", "facility_manager")
        # From the last filter, the next Tab stop is the first desk of the plan.
        await page.focus("#f-agency")
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.dataset.id")
        assert focused == "L1-D01"
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.dataset.id") == "L1-D02"
        await page.keyboard.press("Shift+Tab")
        await page.keyboard.press("Enter")

        panel = page.get_by_test_id("map-panel")
        await expect(panel).to_be_visible()
        await expect(panel.get_by_role("heading", level=2)).to_contain_text("L1-D01")
        timeline = panel.get_by_test_id("map-timeline")
        await expect(timeline.locator('li[data-kind="booked"]')).to_contain_text("Ayu Lestari")
        await expect(panel).to_be_focused()
        await screenshot(page, "map-timeline")

        # Escape closes it and gives the focus back to the desk; Space opens it too.
        await page.keyboard.press("Escape")
        await expect(panel).to_be_hidden()
        assert await page.evaluate("document.activeElement.dataset.id") == "L1-D01"
        await page.keyboard.press("Space")
        await expect(panel).to_be_visible()


async def test_a_zone_filter_reduces_the_desks_and_stays_in_the_url(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await open_map(ruang, browser, "p-siti", "facility_manager")
        await expect(page.locator(".floor-svg .desk")).to_have_count(24)
        await page.evaluate("window.__ruangMarker = 'still-here'")

        await page.select_option("#f-zone", "A1-L1-Z2")

        await expect(page.locator(".floor-svg .desk")).to_have_count(6)
        await expect(desk(page, "L1-D07")).to_be_visible()
        await expect(page).to_have_url(
            f"{ruang.base_url}/map?building=A1&floor=A1-L1&zone=A1-L1-Z2"
        )
        assert await page.evaluate("window.__ruangMarker") == "still-here"

        # The link is shareable: a fresh visit shows the same selection.
        other = await ruang.page(browser, "p-siti", "facility_manager")
        await other.goto(page.url)
        await expect(other.locator(".floor-svg .desk")).to_have_count(6)
        await expect(other.locator("#f-zone")).to_have_value("A1-L1-Z2")

        # Agency filter: the zones reserved for one agency only.
        await other.select_option("#f-zone", "")
        await other.select_option("#f-agency", "Otorita IKN")
        await expect(other.locator(".floor-svg .desk")).to_have_count(6)
        await expect(desk(other, "L1-D13")).to_be_visible()
        await expect(other).to_have_url(
            f"{ruang.base_url}/map?building=A1&floor=A1-L1&agency=Otorita+IKN"
        )

        # Another floor through the floor select, and back through history.
        await other.select_option("#f-floor", "A1-L2")
        await expect(desk(other, "L2-D01")).to_be_visible()
        await other.go_back()
        await expect(desk(other, "L1-D13")).to_be_visible()

        phone = await open_map(
            ruang, browser, "p-siti", "facility_manager", viewport={"width": 390, "height": 844}
        )
        await desk(phone, "L1-D05").click()
        await expect(phone.get_by_test_id("map-panel")).to_be_visible()
        # The plan fits the phone's width and the panel stacks below it.
        box = await phone.locator(".floor-svg").bounding_box()
        assert box is not None and box["width"] <= 390
        panel_box = await phone.get_by_test_id("map-panel").bounding_box()
        assert panel_box is not None and panel_box["y"] > box["y"] + box["height"] - 1
        await screenshot(phone, "map-phone")


async def test_a_500_desk_floor_renders_every_desk(tmp_path: Path, browser: Browser) -> None:
    layout = write_big_floor_layout(tmp_path / "big.yaml")
    async with running_ruang(tmp_path, layout=layout) as ruang:
        page = await ruang.page(browser, "p-siti", "facility_manager")
        await page.goto(f"/map?floor={FLOOR}")
        await wait_in_page(
            page, "() => performance.getEntriesByName('ruang-map-rendered').length > 0"
        )
        await expect(page.locator(".floor-svg .desk")).to_have_count(DESKS)
        await expect(
            page.get_by_test_id("map-legend").locator('[data-state="free"] .count')
        ).to_have_text(str(DESKS))
