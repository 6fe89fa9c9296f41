"""The facility manager's analytics view against the real analytics API.

History is written straight into the cloud's database (as tests/cloud/analytics/test_analytics.py
does) for two past weeks of the sample building, so "now" never matters. Every
number the page renders carries the API's raw value in `data-value`; the tests
compare those with the API's own JSON for the same range, exactly.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from cloud.db.models import Booking, Event, PresenceChange
from tests.dashboards.conftest import Ruang, running_ruang, screenshot

pytestmark = pytest.mark.servers

TZ = ZoneInfo("Asia/Makassar")  # the sample site's zone
MONDAY = datetime(2025, 3, 3, tzinfo=TZ)
BUILDING = "A1"
# The page's range is inclusive of its last day; the API's `to` is exclusive.
WEEKS_2 = ("2025-03-03", "2025-03-16")
WEEK_2 = ("2025-03-10", "2025-03-16")
WEEK_1 = ("2025-03-03", "2025-03-09")
_ids = count(1)


def at(day: int, hour: float) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour)


def checkin(desk: str, day: int, start: float, end: float) -> list[dict[str, Any]]:
    def event(kind: str, ts: datetime) -> dict[str, Any]:
        return {
            "message_id": f"seed-{next(_ids)}",
            "node": "ikn-demo-l1",
            "desk": desk,
            "kind": kind,
            "ts": ts,
            "received_at": ts,
            "badge": "04A1B2C3D4E5F6",
            "payload": {},
        }

    return [event("checkin", at(day, start)), event("checkout", at(day, end))]


def booking(
    desk: str,
    day: int,
    start: float,
    end: float,
    status: str,
    reason: str | None = None,
    released: float | None = None,
) -> dict[str, Any]:
    return {
        "desk_id": desk,
        "person_id": "p-ayu",
        "starts_at": at(day, start),
        "ends_at": at(day, end),
        "status": status,
        "exclusive_person": False,
        "created_at": at(day - 1, 12),
        "walk_up": False,
        "release_reason": reason,
        "released_at": at(day, released) if released is not None else None,
    }


async def seed(ruang: Ruang) -> None:
    engine = create_async_engine(ruang.settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(Event),
                [
                    *checkin("L1-D01", 0, 9, 12),
                    *checkin("L1-D02", 0, 10, 11.5),
                    *checkin("L1-D04", 1, 8, 17),
                    *checkin("L2-D01", 2, 13, 16.25),
                    *checkin("L1-D01", 7, 13, 15),
                    *checkin("L1-D02", 7, 13.5, 14),
                    *checkin("L3-D01", 9, 9, 10),
                ],
            )
            await conn.execute(
                insert(PresenceChange),
                [
                    {"desk_id": "L1-D01", "present": True, "ts": at(0, 9.1)},
                    {"desk_id": "L1-D01", "present": False, "ts": at(0, 11.9)},
                    {"desk_id": "L2-D03", "present": True, "ts": at(8, 10)},
                    {"desk_id": "L2-D03", "present": False, "ts": at(8, 11)},
                ],
            )
            await conn.execute(
                insert(Booking),
                [
                    booking("L1-D01", 0, 9, 13, "completed"),
                    booking("L1-D03", 0, 13, 15, "no_show", "no_show", 13.25),
                    booking("L1-D05", 1, 9, 10, "released", "away", 9.75),
                    booking("L2-D02", 7, 9, 12, "no_show", "no_show", 9.25),
                    booking("L1-D01", 7, 13, 16, "completed"),
                    booking("L3-D02", 9, 8, 12, "released", "released_at_desk", 10.5),
                    booking("L3-D03", 9, 13, 14, "released", "displaced_by_offline_checkin", 13.1),
                ],
            )
    finally:
        await engine.dispose()


def api_range(days: tuple[str, str]) -> dict[str, str]:
    start = datetime.fromisoformat(days[0]).replace(tzinfo=TZ)
    end = datetime.fromisoformat(days[1]).replace(tzinfo=TZ) + timedelta(days=1)
    return {"from": start.isoformat(), "to": end.isoformat(), "building": BUILDING}


# The reports the page draws, with the query each card asks for.
REPORTS = {
    "kpis": ("utilisation", {"level": "building", "bucket": "range"}),
    "daily": ("utilisation", {"level": "building", "bucket": "day"}),
    "releases": ("releases", {"level": "building", "bucket": "day"}),
    "matrix": ("booking-sensor-matrix", {"level": "zone"}),
    "underused": (
        "utilisation",
        {"level": "zone", "bucket": "range", "order": "utilisation", "limit": "5"},
    ),
    "heatmap": ("heatmap", {}),
}


async def api_json(ruang: Ruang, days: tuple[str, str]) -> dict[str, Any]:
    out = {}
    for card, (path, params) in REPORTS.items():
        r = await ruang.admin.get(f"/api/v1/analytics/{path}", params={**api_range(days), **params})
        assert r.status_code == 200, r.text
        out[card] = r.json()
    return out


def same(dom: str, api: Any) -> bool:
    """A data-value attribute against the API's JSON value: exact, null is empty."""
    if api is None:
        return dom == ""
    return dom != "" and float(dom) == float(api)


async def data(page: Page, selector: str) -> list[dict[str, str]]:
    """The dataset of every element matching `selector`, in document order."""
    return await page.locator(selector).evaluate_all(
        "nodes => nodes.map(n => Object.assign({}, n.dataset))"
    )


async def wait_ready(page: Page) -> None:
    await expect(page.locator("#analytics-root")).to_have_attribute("data-state", "ready")


async def assert_page_matches_api(page: Page, api: dict[str, Any]) -> None:
    # Heatmap: all 7 × 24 SVG cells and the table alternative.
    cells = {(c["weekday"], c["hour"]): c["utilisation_pct"] for c in api["heatmap"]["cells"]}
    for selector in ("#a-heatmap g.cell", "#a-heatmap-table td"):
        dom = await data(page, selector)
        assert len(dom) == 7 * 24
        for d in dom:
            assert same(d["value"], cells[(int(d["weekday"]), int(d["hour"]))]), (selector, d)
    assert any(v not in (None, 0.0) for v in cells.values())  # the seed shows up at all

    [total] = api["kpis"]["rows"]
    kpis = await data(page, "#a-kpis dd")
    assert {d["field"] for d in kpis} == {
        "utilisation_pct",
        "peak_occupancy",
        "avg_occupancy_when_occupied",
        "bookings",
        "no_shows",
        "no_show_rate",
        "desks",
    }
    for d in kpis:
        assert same(d["value"], total[d["field"]]), d

    daily = api["daily"]["rows"]
    rows = page.locator("#a-daily tbody tr")
    await expect(rows).to_have_count(len(daily))
    for i, row in enumerate(daily):
        assert await rows.nth(i).get_attribute("data-day") == row["bucket_start"][:10]
        for d in await data(page, f"#a-daily tbody tr:nth-child({i + 1}) td"):
            assert same(d["value"], row[d["field"]]), (row, d)
    bars = await data(page, "#a-noshow g.bar")
    assert [b["day"] for b in bars] == [r["bucket_start"][:10] for r in daily]
    assert all(same(b["value"], r["no_show_rate"]) for b, r in zip(bars, daily, strict=True))

    releases = api["releases"]["rows"]
    bars = await data(page, "#a-releases g.bar")
    assert len(bars) == len(releases)
    for bar, row in zip(bars, releases, strict=True):
        assert bar["day"] == row["bucket_start"][:10] and same(bar["value"], row["released"])
    segments = await data(page, "#a-releases g.bar rect")
    assert sum(float(s["value"]) for s in segments) == sum(r["released"] for r in releases)
    for row in (r for r in releases if r["released"]):
        for d in await data(page, f'#a-releases tr[data-day="{row["bucket_start"][:10]}"] td'):
            assert same(d["value"], row[d["field"]]), (row, d)

    for card in ("matrix", "underused"):
        rows_api = api[card]["rows"]
        dom_rows = page.locator(f"#a-{card} tbody tr")
        # The same entities in the API's order (least used first for under-used zones).
        assert [
            await dom_rows.nth(i).get_attribute("data-entity")
            for i in range(await dom_rows.count())
        ] == [r["entity"] for r in rows_api]
        for i, row in enumerate(rows_api):
            cells_ = await data(page, f"#a-{card} tbody tr:nth-child({i + 1}) td[data-field]")
            assert cells_ and all(same(d["value"], row[d["field"]]) for d in cells_), (row, cells_)


async def open_analytics(
    ruang: Ruang, browser: Browser, days: tuple[str, str], **options: Any
) -> Page:
    page = await ruang.page(browser, "p-siti", "facility_manager", **options)
    await page.goto(f"/analytics?from={days[0]}&to={days[1]}&building={BUILDING}")
    await wait_ready(page)
    return page


async def test_every_number_on_the_page_is_the_apis_and_the_range_lives_in_the_url(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        await seed(ruang)
        page = await open_analytics(ruang, browser, WEEKS_2)
        first = await api_json(ruang, WEEKS_2)
        await assert_page_matches_api(page, first)
        # Labels are formatted for Bahasa Indonesia (comma decimals), values stay raw.
        util = page.locator('#a-kpis dd[data-field="utilisation_pct"]')
        value = first["kpis"]["rows"][0]["utilisation_pct"]
        assert same(await util.get_attribute("data-value") or "", value)
        await expect(util).to_have_text(f"{value:.2f}".replace(".", ",") + " %")
        await screenshot(page, "analytics")

        # A shorter range: the URL takes it, and the numbers follow the API for it.
        await page.fill("#a-from", WEEK_2[0])
        await page.fill("#a-to", WEEK_2[1])
        await page.get_by_role("button", name="Tampilkan", exact=True).click()
        await expect(page).to_have_url(
            f"{ruang.base_url}/analytics?from={WEEK_2[0]}&to={WEEK_2[1]}&building={BUILDING}"
        )
        await wait_ready(page)
        second = await api_json(ruang, WEEK_2)
        assert second["kpis"]["rows"][0] != first["kpis"]["rows"][0]
        await assert_page_matches_api(page, second)
        await expect(page.locator("#a-daily tbody tr")).to_have_count(7)

        # Back restores the first range from the URL alone.
        await page.go_back()
        await wait_ready(page)
        await expect(page.locator("#a-from")).to_have_value(WEEKS_2[0])
        await expect(page.locator("#a-daily tbody tr")).to_have_count(14)

        # An end before the start is refused in the page: no request, URL unchanged.
        url = page.url
        await page.fill("#a-to", "2025-03-01")
        await page.get_by_role("button", name="Tampilkan", exact=True).click()
        await expect(page.get_by_role("alert")).to_have_text(
            "Tanggal akhir tidak boleh sebelum tanggal awal."
        )
        assert page.url == url
        # So is a range longer than the API allows.
        await page.fill("#a-from", "2024-01-01")
        await page.fill("#a-to", "2025-03-01")
        await page.get_by_role("button", name="Tampilkan", exact=True).click()
        await expect(page.get_by_role("alert")).to_contain_text("366")


async def test_english_labels_use_point_decimals_and_default_range_is_four_weeks(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        await seed(ruang)
        page = await open_analytics(ruang, browser, WEEKS_2)
        await page.goto(f"/analytics?from={WEEKS_2[0]}&to={WEEKS_2[1]}&lang=en")
        await wait_ready(page)
        value = (await api_json(ruang, WEEKS_2))["kpis"]["rows"][0]["utilisation_pct"]
        await expect(page.locator('#a-kpis dd[data-field="utilisation_pct"]')).to_have_text(
            f"{value:.2f} %"
        )
        # Without a range in the URL: the last 28 days, both ends included.
        await page.goto("/analytics")
        await wait_ready(page)
        start = datetime.fromisoformat(await page.input_value("#a-from"))
        end = datetime.fromisoformat(await page.input_value("#a-to"))
        assert (end - start).days == 27


async def test_csv_exports_are_the_apis_csv_and_png_exports_are_images(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        await seed(ruang)
        page = await open_analytics(ruang, browser, WEEKS_2)
        for card, (path, params) in REPORTS.items():
            async with page.expect_download() as info:
                await page.get_by_test_id(f"csv-{card}").click()
            download = await info.value
            got = Path(await download.path()).read_text(encoding="utf-8")
            r = await ruang.admin.get(
                f"/api/v1/analytics/{path}",
                params={**api_range(WEEKS_2), **params, "format": "csv"},
            )
            assert r.status_code == 200
            assert got == r.text, card
            assert list(csv.reader(io.StringIO(got)))[1:], card  # rows, not just a header

        # Chromium lets one page start only about ten downloads in a row before it
        # silently holds the rest for a "download multiple files" permission: reload.
        await page.reload()
        await wait_ready(page)
        for card in ("heatmap", "noshow", "releases", "matrix", "underused"):
            async with page.expect_download() as info:
                await page.get_by_test_id(f"png-{card}").click()
            download = await info.value
            assert download.suggested_filename.endswith(".png")
            png = Path(await download.path()).read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n", card
            width = int.from_bytes(png[16:20], "big")
            height = int.from_bytes(png[20:24], "big")
            assert width >= 600 and height >= 150 and len(png) > 5000, (card, width, height)


async def test_phone_layout_and_keyboard_use(tmp_path: Path, browser: Browser) -> None:
    async with running_ruang(tmp_path) as ruang:
        await seed(ruang)
        page = await open_analytics(ruang, browser, WEEKS_2, viewport={"width": 390, "height": 844})
        # Nothing but the charts' own scroll boxes is wider than the phone.
        overflow = await page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390
        await screenshot(page, "analytics-phone")
        # The heatmap's table can be shown from the keyboard.
        toggle = page.get_by_role("button", name="Tampilkan sebagai tabel")
        await toggle.focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("button", name="Sembunyikan tabel")).to_have_attribute(
            "aria-expanded", "true"
        )
        await expect(page.locator("#a-heatmap-table")).to_be_visible()


async def test_a_technician_is_refused_the_new_analytics_endpoints(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, "p-joko", "technician")
        response = await page.goto("/analytics")
        assert response is not None and response.status == 403
        query = "&".join(f"{k}={v}" for k, v in api_range(WEEKS_2).items()).replace("+", "%2B")
        for path in (
            "releases?",
            "releases?format=csv&",
            "heatmap?format=csv&",
            "utilisation?bucket=range&order=utilisation&limit=5&",
        ):
            r = await page.request.get(f"/api/v1/analytics/{path}{query}")
            assert r.status == 403, path
        manager = await ruang.page(browser, "p-siti", "facility_manager")
        r = await manager.request.get(f"/api/v1/analytics/releases?{query}")
        assert r.status == 200 and parse_qs(urlparse(r.url).query)["building"] == [BUILDING]


async def test_the_rooms_card_shows_the_room_reports_numbers_and_exports_its_csv(
    tmp_path: Path, browser: Browser
) -> None:
    from cloud.db.tables import ROOM_BOOKINGS, ROOM_PRESENCE_CHANGES

    async with running_ruang(tmp_path) as ruang:
        engine = create_async_engine(ruang.settings.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(ROOM_BOOKINGS),
                    [
                        {"room_id": "A1-L1-R2", "person_id": "p-ayu", "status": s,
                         "starts_at": at(1, h), "ends_at": at(1, h + 2), "created_at": at(0, 0),
                         "walk_up": False, "attendees": 3}
                        for s, h in (("completed", 9), ("no_show", 13))
                    ],
                )  # fmt: skip
                await conn.execute(
                    insert(ROOM_PRESENCE_CHANGES),
                    [
                        {"room_id": "A1-L1-R2", "occupied": o, "ts": at(1, h)}
                        for o, h in ((True, 9.5), (False, 10.5), (True, 16), (False, 17.5))
                    ],
                )
        finally:
            await engine.dispose()
        page = await open_analytics(ruang, browser, WEEK_1)
        start = f"{WEEK_1[0]}T00:00:00+08:00"
        end = (datetime.fromisoformat(WEEK_1[1]) + timedelta(days=1)).strftime("%Y-%m-%d")
        report = (
            await ruang.admin.get(
                "/api/v1/analytics/rooms", params={"from": start, "to": f"{end}T00:00:00+08:00"}
            )
        ).json()
        row = {r["room_id"]: r for r in report["rooms"]}["A1-L1-R2"]
        assert (row["booked_hours"], row["sensed_hours"], row["sensed_unbooked_hours"]) == (
            2.0, 2.5, 1.5,
        )  # fmt: skip
        cells = page.locator('#a-rooms tr[data-room="A1-L1-R2"] [data-field]')
        values = {
            await cells.nth(i).get_attribute("data-field"): await cells.nth(i).get_attribute(
                "data-value"
            )
            for i in range(await cells.count())
        }
        assert values == {
            "booked_hours": "2", "sensed_hours": "2.5", "sensed_unbooked_hours": "1.5",
            "no_shows": "1", "right_size": "too_big",
        }  # fmt: skip
        async with page.expect_download() as info:
            await page.get_by_test_id("csv-rooms").click()
        text = Path(await (await info.value).path()).read_text()
        rows = {r["room_id"]: r for r in csv.DictReader(io.StringIO(text))}
        assert rows["A1-L1-R2"]["sensed_unbooked_hours"] == "1.5"
