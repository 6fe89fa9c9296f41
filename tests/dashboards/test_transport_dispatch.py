"""The dispatcher's live transport map (/transport/dispatch): the network drawn from the GTFS
shapes and stops, vehicles moving without a reload as positions arrive through Mosquitto,
stale/off-route/offline highlighted, trip assignment, cancellation and service alerts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest
from playwright.async_api import Browser, Page, expect

from ruang import contract
from ruang.mqtt_url import parse_broker_url
from tests.dashboards.conftest import Ruang, running_ruang, screenshot
from tests.dashboards.transport_helpers import load_rolling_transport

pytestmark = pytest.mark.servers

LIVE_TIMEOUT = 15_000  # ms: a bound for the real stack to settle, not a performance check
# Along the K1 shape (cloud/transport/sample_gtfs/shapes.txt): Hunian ASN Blok A, then on.
K1_START = (-0.99300, 116.71550)
K1_NEXT = (-0.99150, 116.71490)
FAR_OFF = (-0.97500, 116.69000)  # about a kilometre from any route


async def publish(ruang: Ruang, vehicle: str, at: tuple[float, float], ts: float) -> None:
    """One GNSS fix of `vehicle`, sent by its own node as the edge agent would."""
    msg = contract.Position(
        node=vehicle,
        ts=ts,
        vehicle=vehicle,
        lat=at[0],
        lon=at[1],
        speed_kmh=18.0,
        fix_quality=1,
        satellites=9,
        hdop=0.9,
    )
    target = parse_broker_url(ruang.broker.url)
    async with aiomqtt.Client(target.host, target.port) as client:
        await client.publish(contract.topic_for(msg), contract.encode(msg), qos=1)


def marker(page: Page, vehicle: str):  # type: ignore[no-untyped-def]
    return page.locator(f'.transit-svg .vehicle[data-vehicle="{vehicle}"]')


def row(page: Page, vehicle: str):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("dispatch-vehicles").locator(f'tr[data-vehicle="{vehicle}"]')


async def open_dispatch(ruang: Ruang, browser: Browser, role: str = "dispatcher") -> Page:
    page = await ruang.page(browser, "p-joko", role, viewport={"width": 1440, "height": 1000})
    await page.goto("/transport/dispatch")
    await expect(page.get_by_test_id("transit-map")).to_be_visible()
    await expect(page.get_by_test_id("dispatch-live")).to_have_attribute("data-live", "open")
    return page


async def test_vehicles_move_on_the_map_without_a_reload_and_problems_stand_out(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        await load_rolling_transport(ruang, datetime.now(UTC))
        page = await open_dispatch(ruang, browser)
        # The network: one line per shape the day's trips use (K1, K2), every stop.
        await expect(page.locator(".transit-svg .route-line")).to_have_count(2)
        await expect(page.locator(".transit-svg .stop")).to_have_count(12)
        await expect(row(page, "shuttle-01")).to_be_visible()
        await page.evaluate("window.__ruangMarker = 'still-here'")

        # The dispatcher puts shuttle-01 on the K1 trip leaving in five minutes.
        await page.select_option("#assign-vehicle", "shuttle-01")
        # After midnight the list holds yesterday's late trips first (still running) and
        # today's: the first is the one leaving in five minutes.
        service_date = await page.locator(
            "#assign-trip option[value^='K1-R+5|']"
        ).first.get_attribute("value")
        assert service_date is not None
        await page.select_option("#assign-trip", service_date)
        await page.get_by_role("button", name="Tugaskan").click()
        await expect(page.get_by_test_id("assign-status")).to_have_text(
            "shuttle-01 ditugaskan ke K1-R+5."
        )

        # Its fixes arrive through the broker: the marker appears, then moves.
        now = time.time()
        await publish(ruang, "shuttle-01", K1_START, now - 5)
        bus = marker(page, "shuttle-01")
        await expect(bus).to_have_attribute("data-lat", str(K1_START[0]), timeout=LIVE_TIMEOUT)
        await expect(row(page, "shuttle-01").locator('[data-col="trip"]')).to_have_text(
            "K1 · K1-R+5", timeout=LIVE_TIMEOUT
        )
        await publish(ruang, "shuttle-01", K1_NEXT, now)
        await expect(bus).to_have_attribute("data-lat", str(K1_NEXT[0]), timeout=LIVE_TIMEOUT)
        await expect(bus).to_have_attribute("data-alert", "")
        await expect(bus).to_have_attribute("data-state", "in_service")
        label = await bus.get_attribute("aria-label") or ""
        assert label.startswith("shuttle-01, Beroperasi, rute K1"), label

        # shuttle-02 on K2, but a kilometre off its route: highlighted as off route.
        r = await ruang.admin.post(
            "/api/v1/transport/assignments",
            json={
                "vehicle": "shuttle-02",
                "trip_id": "K2-R+5",
                "service_date": service_date.split("|")[1],
            },
        )
        assert r.status_code == 201, r.text
        await publish(ruang, "shuttle-02", FAR_OFF, time.time())
        await expect(marker(page, "shuttle-02")).to_have_attribute(
            "data-alert", "off_route", timeout=LIVE_TIMEOUT
        )
        await expect(row(page, "shuttle-02").locator('[data-flag="off_route"]')).to_have_text(
            "Keluar rute"
        )
        # shuttle-03's last fix is 15 minutes old: it shows as offline (and stale).
        await publish(ruang, "shuttle-03", K1_START, time.time() - 900)
        await expect(marker(page, "shuttle-03")).to_have_attribute(
            "data-alert", "offline", timeout=LIVE_TIMEOUT
        )
        await expect(row(page, "shuttle-03").locator('[data-flag="offline"]')).to_have_text(
            "Luring"
        )
        await expect(row(page, "shuttle-03").locator('[data-flag="stale"]')).to_have_text(
            "Posisi usang"
        )
        assert await page.evaluate("window.__ruangMarker") == "still-here"
        await screenshot(page, "transport-dispatch")

        # What the page shows is what the live API says.
        live = {
            v["vehicle"]: v
            for v in (await ruang.admin.get("/api/v1/transport/live")).json()["vehicles"]
        }
        assert live["shuttle-01"]["trip"] == "K1-R+5" and live["shuttle-01"]["lat"] == K1_NEXT[0]
        assert live["shuttle-02"]["off_route"] is True
        assert live["shuttle-03"]["state"] == "offline"


async def test_service_alerts_and_cancellations_from_the_dispatcher(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        await load_rolling_transport(
            ruang, datetime.now(UTC), site_stops=("KIPP-KEMENKO", "KIPP-SETNEG")
        )
        page = await open_dispatch(ruang, browser)
        await expect(page.get_by_test_id("alert-list")).to_contain_text(
            "Tidak ada pengumuman aktif."
        )
        await page.fill("#alert-header", "Jalan Sumbu Kebangsaan ditutup sebagian")
        await page.fill(
            "#alert-description", "Shuttle K1 lewat jalur alternatif hingga pukul 12.00."
        )
        await page.select_option("#alert-effect", "DETOUR")
        await page.select_option("#alert-route", "K1")
        await page.get_by_role("button", name="Terbitkan pengumuman").click()
        await expect(page.get_by_test_id("alert-status")).to_have_text("Pengumuman diterbitkan.")
        item = page.get_by_test_id("alert-list").locator("li")
        await expect(item).to_have_count(1)
        await expect(item).to_contain_text("Pengalihan rute")
        alerts = (await ruang.admin.get("/api/v1/transport/alerts")).json()
        assert [(a["header"], a["effect"], a["route_id"]) for a in alerts] == [
            ("Jalan Sumbu Kebangsaan ditutup sebagian", "DETOUR", "K1")
        ]
        # The lobby kiosk of the building shows the headline.
        kiosk = (
            await ruang.admin.get("/api/v1/public/availability", params={"site": "ikn-kipp"})
        ).json()
        assert kiosk["shuttle_alerts"] == ["Jalan Sumbu Kebangsaan ditutup sebagian"]

        # Cancelling a trip: the kiosk board says so.
        first = kiosk["shuttles"][0]
        value = f"{first['trip']}|{first['service_date']}"
        await page.select_option("#assign-trip", value)
        await page.get_by_role("button", name="Batalkan perjalanan").click()
        await expect(page.get_by_test_id("assign-status")).to_have_text(
            f"Perjalanan {first['trip']} dibatalkan."
        )
        board = (
            await ruang.admin.get("/api/v1/public/availability", params={"site": "ikn-kipp"})
        ).json()["shuttles"]
        assert {(d["trip"], d["status"]) for d in board if d["trip"] == first["trip"]} == {
            (first["trip"], "cancelled")
        }

        # Ending the alert takes it off the list.
        await item.get_by_role("button", name="Akhiri").click()
        await expect(page.get_by_test_id("alert-list")).to_contain_text(
            "Tidak ada pengumuman aktif."
        )


async def test_the_dispatcher_view_is_for_transport_operators_only(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        for role, status in (("asn", 403), ("technician", 403), ("facility_manager", 200)):
            page = await ruang.page(browser, "p-joko", role)
            response = await page.goto("/transport/dispatch")
            assert response is not None and response.status == status, role
            link = page.get_by_role("link", name="Dispatcher")
            await expect(link).to_have_count(1 if status == 200 else 0)
        # A dispatcher lands on the dispatcher view after signing in.
        page = await ruang.page(browser, "p-joko", "dispatcher")
        await page.goto("/")
        await expect(page).to_have_url(f"{ruang.base_url}/transport/dispatch")
