"""Transport analytics (/transport/analytics) against the real transport analytics API.

History (seat reservations decided at departure, pool-car trips) is written
straight into the cloud's database for one past week, so "now" never matters.
Every number the page renders carries the API's raw value in `data-value`; the
test compares them with the API's JSON for the same range, exactly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from tests.dashboards.conftest import Ruang, running_ruang, screenshot
from tests.dashboards.transport_helpers import insert_rows, load_sample_transport

pytestmark = pytest.mark.servers

WITA = ZoneInfo("Asia/Makassar")
MONDAY = datetime(2026, 11, 30, tzinfo=WITA)
WEEK = ("2026-11-30", "2026-12-06")
BASE = "/api/v1/analytics/transport"


def at(day: int, hour: float) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour)


def api_range(days: tuple[str, str]) -> dict[str, str]:
    start = datetime.fromisoformat(days[0]).replace(tzinfo=WITA)
    end = datetime.fromisoformat(days[1]).replace(tzinfo=WITA) + timedelta(days=1)
    return {"from": start.isoformat(), "to": end.isoformat()}


async def seed(ruang: Ruang) -> None:
    await load_sample_transport(ruang)
    trips = [("K1-0-0600", 0, 6.0), ("K1-0-0615", 1, 6.25), ("K2-0-0600", 2, 6.0)]
    await insert_rows(
        ruang,
        "transport_trip_seats",
        [
            {
                "trip_id": trip,
                "service_date": at(day, 0).strftime("%Y%m%d"),
                "vehicle_id": "shuttle-01",
                "capacity": 24,
                "confirmed": 0,
                "walk_ons": 0,
                "walk_ons_over": 0,
                "departs_at": at(day, hour),
                "arrives_at": at(day, hour + 0.75),
            }
            for trip, day, hour in trips
        ],
    )
    outcomes = {
        "K1-0-0600": ("boarded", "boarded", "no_show"),
        "K1-0-0615": ("boarded", "cancelled"),
        "K2-0-0600": ("no_show", "boarded", "boarded", "boarded"),
    }
    people = ("p-ayu", "p-budi", "p-siti", "p-joko")
    await insert_rows(
        ruang,
        "transport_reservations",
        [
            {
                "trip_id": trip,
                "service_date": at(day, 0).strftime("%Y%m%d"),
                "person_id": people[i],
                "from_stop": "HA-BLOK-A" if trip.startswith("K1") else "HB-BARAT-1",
                "to_stop": "KIPP-TERM",
                "status": status,
                "walk_on": False,
                "departs_at": at(day, hour),
                "created_at": at(day - 1, 12),
            }
            for trip, day, hour in trips
            for i, status in enumerate(outcomes[trip])
        ],
    )

    def boarding(
        n: int, trip: str, day: int, hour: float, stop: str, allowed: bool = True
    ) -> dict[str, Any]:
        ts = at(day, hour)
        return {
            "message_id": f"seed-boarding-{n}",
            "node": "shuttle-01",
            "vehicle_id": "shuttle-01",
            "reader": "door-1",
            "ts": ts,
            "hour": ts.hour,
            "trip_id": trip,
            "service_date": at(day, 0).strftime("%Y%m%d"),
            "stop_id": stop,
            "allowed": allowed,
            "reason": "reserved" if allowed else "full",
            "person_id": None,
            "outcome": "reserved" if allowed else None,
        }

    await insert_rows(
        ruang,
        "transport_boardings",
        [
            *(boarding(i, "K1-0-0600", 0, 6.0, "HA-BLOK-A") for i in range(5)),
            *(boarding(10 + i, "K1-0-0600", 0, 6.1, "HA-BLOK-D") for i in range(3)),
            *(boarding(20 + i, "K1-0-0615", 1, 6.3, "HA-BLOK-A") for i in range(6)),
            *(boarding(30 + i, "K2-0-0600", 2, 7.05, "HB-BARAT-1") for i in range(4)),
            boarding(40, "K2-0-0600", 2, 7.1, "HB-BARAT-1", allowed=False),  # refused: full
        ],
    )

    def departed(
        trip: str,
        day: int,
        hour: float,
        seq: int,
        stop: str,
        delay_s: float,
        inferred: bool = False,
    ) -> dict[str, Any]:
        scheduled = at(day, hour)
        return {
            "trip_id": trip,
            "service_date": at(day, 0).strftime("%Y%m%d"),
            "stop_sequence": seq,
            "stop_id": stop,
            "route_id": trip[:2],
            "vehicle_id": "shuttle-01",
            "arrival_at": scheduled,
            "departure_at": scheduled + timedelta(seconds=delay_s),
            "scheduled_arrival_at": scheduled,
            "scheduled_departure_at": scheduled,
            "stopped": True,
            "inferred": inferred,
            "updated_at": scheduled,
        }

    await insert_rows(
        ruang,
        "transport_stop_events",
        [
            # K1: on time, 2 min late (still on time), 6 min 40 s late.
            departed("K1-0-0600", 0, 6.0, 1, "HA-BLOK-A", 0),
            departed("K1-0-0600", 0, 6.03, 2, "HA-BLOK-D", 120),
            departed("K1-0-0600", 0, 6.07, 3, "SIMPANG-SKS", 400),
            # K2: 90 s early (not on time), 30 s late; one departure inferred across a gap.
            departed("K2-0-0600", 2, 6.0, 1, "HB-BARAT-1", -90),
            departed("K2-0-0600", 2, 6.04, 2, "HB-BARAT-2", 30),
            departed("K2-0-0600", 2, 6.08, 3, "SIMPANG-TOL", 900, inferred=True),
        ],
    )

    def car(vehicle: str, day: int, start: float, end: float, km: float) -> dict[str, Any]:
        return {
            "vehicle_id": vehicle,
            "person_id": "p-budi",
            "agency": "Kementerian Keuangan",
            "purpose": "Rapat koordinasi",
            "destination": "Balikpapan",
            "starts_at": at(day, start),
            "ends_at": at(day, end),
            "status": "returned",
            "created_at": at(day - 1, 9),
            "picked_up_at": at(day, start),
            "returned_at": at(day, end),
            "distance_m": km * 1000,
        }

    await insert_rows(
        ruang,
        "transport_car_bookings",
        [
            car("car-01", 0, 8, 11.5, 42.5),
            car("car-01", 3, 13, 18, 120.0),  # one hour after working time
            car("car-02", 1, 6, 9, 15.25),  # one hour before it
        ],
    )


def same(dom: str, api: Any) -> bool:
    if api is None:
        return dom == ""
    return dom != "" and float(dom) == float(api)


async def data(page: Page, selector: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = await page.locator(selector).evaluate_all(
        "nodes => nodes.map(n => Object.assign({}, n.dataset))"
    )
    return found


async def api_json(ruang: Ruang, days: tuple[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path, extra in (
        ("routes", "routes", {}),
        ("cars", "pool-cars", {}),
        ("route", "ridership", {"by": "route"}),
        ("stop", "ridership", {"by": "stop"}),
        ("hour", "ridership", {"by": "hour"}),
    ):
        r = await ruang.admin.get(f"{BASE}/{path}", params={**api_range(days), **extra})
        assert r.status_code == 200, r.text
        out[name] = r.json()
    return out


async def assert_page_matches_api(page: Page, api: dict[str, Any]) -> None:
    kpis = {d["field"]: d["value"] for d in await data(page, "[data-testid=ta-kpis] dd")}
    assert same(kpis["boardings"], api["route"]["total"])
    assert same(kpis["load_factor"], api["routes"]["totals"]["load_factor"])
    assert same(kpis["on_time_rate"], api["routes"]["totals"]["on_time_rate"])
    assert same(kpis["no_show_rate"], api["routes"]["totals"]["no_show_rate"])
    assert same(kpis["utilisation"], api["cars"]["totals"]["utilisation"])
    for table, report, key in (("routes", "routes", "route"), ("cars", "cars", "vehicle")):
        rows = [*api[report]["rows"], api[report]["totals"]]
        dom_rows = page.locator(f'table[data-table="{table}"] tbody tr')
        await expect(dom_rows).to_have_count(len(rows))
        for i, row in enumerate(rows):
            assert await dom_rows.nth(i).get_attribute("data-key") == row[key]
            cells = await data(
                page, f'table[data-table="{table}"] tbody tr:nth-child({i + 1}) td[data-field]'
            )
            assert cells and all(same(c["value"], row[c["field"]]) for c in cells), (row, cells)
    for by in ("route", "stop", "hour"):
        rows = api[by]["rows"]
        if not api[by]["total"]:
            continue
        bars = await data(page, f"#ta-ridership-{by} svg rect[data-key]")
        assert [(b["key"], float(b["value"])) for b in bars] == [
            (r["key"], float(r["boardings"])) for r in rows
        ]


async def test_every_transport_figure_on_the_page_is_the_apis(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        await seed(ruang)
        api = await api_json(ruang, WEEK)
        # The seed shows up: 2 no-shows of 8 decided reservations; car-01 out 3.5 + 4 h
        # and car-02 2 h of working time, over 2 cars x 5 days x 10 h.
        assert api["routes"]["totals"]["no_show_rate"] == 0.25
        # 3 of the 5 detected departures within -1/+5 min (the inferred one is not counted).
        assert api["routes"]["totals"]["departures"] == 5
        assert api["routes"]["totals"]["on_time_rate"] == 0.6
        k1 = next(r for r in api["routes"]["rows"] if r["route"] == "K1")
        assert (k1["departures"], k1["on_time"]) == (3, 2)
        # 18 allowed boardings (the refused one is not ridership) on 3 trips of 24 seats.
        assert api["route"]["total"] == 18
        assert api["routes"]["totals"]["load_factor"] == round(18 / 72, 4)
        assert {r["key"]: r["boardings"] for r in api["hour"]["rows"] if r["boardings"]} == {
            "06": 14,
            "07": 4,
        }
        assert api["cars"]["totals"]["hours_used"] == 9.5
        assert api["cars"]["totals"]["utilisation"] == 0.095
        page = await ruang.page(browser, "p-siti", "facility_manager")
        await page.goto(f"/transport/analytics?from={WEEK[0]}&to={WEEK[1]}")
        await expect(page.locator("#ta-root")).to_have_attribute("data-state", "ready")
        await assert_page_matches_api(page, api)
        # Bahasa Indonesia labels with comma decimals; the raw value stays in data-value.
        await expect(
            page.locator('[data-testid=ta-kpis] dd[data-field="no_show_rate"]')
        ).to_have_text("25,0 %")
        await screenshot(page, "transport-analytics")

        # PNG export of a chart is an image.
        async with page.expect_download() as info:
            await page.get_by_test_id("png-ridership-hour").click()
        png = Path(await (await info.value).path()).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        # CSV buttons download the API's CSV byte for byte.
        for card, path, extra in (
            ("ridership-stop", "ridership", {"by": "stop"}),
            ("routes", "routes", {}),
            ("cars", "pool-cars", {}),
        ):
            async with page.expect_download() as info:
                await page.get_by_test_id(f"csv-{card}").click()
            got = Path(await (await info.value).path()).read_text(encoding="utf-8")
            r = await ruang.admin.get(
                f"{BASE}/{path}", params={**api_range(WEEK), **extra, "format": "csv"}
            )
            assert r.status_code == 200 and got == r.text, card
            assert len(got.splitlines()) >= 3, got  # header, rows and the totals line


async def test_the_transport_analytics_are_for_operators_only(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        await load_sample_transport(ruang)
        query = "&".join(f"{k}={v}" for k, v in api_range(WEEK).items()).replace("+", "%2B")
        asn = await ruang.page(browser, "p-ayu", "asn")
        response = await asn.goto("/transport/analytics")
        assert response is not None and response.status == 403
        r = await asn.request.get(f"{BASE}/routes?{query}")
        assert r.status == 403
        dispatcher = await ruang.page(browser, "p-joko", "dispatcher")
        response = await dispatcher.goto(f"/transport/analytics?from={WEEK[0]}&to={WEEK[1]}")
        assert response is not None and response.status == 200
        await expect(dispatcher.locator("#ta-root")).to_have_attribute("data-state", "ready")
        r = await dispatcher.request.get(f"{BASE}/routes?{query}")
        assert r.status == 200
