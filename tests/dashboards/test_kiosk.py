"""The lobby kiosk: public counts only, and it keeps showing them through API errors."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, expect

from tests.dashboards.conftest import BADGES, ROSTER, SITE, running_ruang, screenshot
from tests.helpers import eventually

pytestmark = pytest.mark.servers

FULL_HD = {"width": 1920, "height": 1080}
AVAILABILITY = "**/api/v1/public/availability**"


def personal_data() -> list[str]:
    """Everything in the test roster that identifies someone: names, ids, NIPs, badge UIDs."""
    lines = ROSTER.strip().splitlines()[1:]
    out: list[str] = list(BADGES.values())
    for line in lines:
        person, _kind, name, _role, _agency, nip = line.split(",")
        out += [person, nip, name, *name.split()]
    return out


def assert_no_personal_data(text: str) -> None:
    for item in personal_data():
        assert not re.search(rf"\b{re.escape(item)}\b", text, re.IGNORECASE), item


async def floor_counts(page: Page, availability: dict[str, Any]) -> None:
    for building in availability["buildings"]:
        for floor in building["floors"]:
            await expect(page.get_by_test_id(f"kiosk-free-{floor['id']}")).to_have_text(
                str(floor["free"])
            )


async def test_the_kiosk_needs_no_login_and_shows_counts_but_no_person(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path, desks=3) as ruang:
        assert ruang.agent is not None
        # Someone checks in on a booked desk, so there is a person behind a count.
        now = datetime.now(UTC)
        r = await ruang.admin.post(
            "/api/v1/bookings",
            json={
                "desk_id": "L1-D01",
                "person_id": "p-ayu",
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(hours=2)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        agent = ruang.agent

        async def booking_at_edge() -> bool:
            snap = agent.book.snapshot
            return snap is not None and bool(snap.bookings.get("L1-D01"))

        await eventually(booking_at_edge, timeout=30, what="booking in the edge snapshot")
        await ruang.sims["L1-D01"].tap(BADGES["p-ayu"])

        async def checked_in() -> dict[str, Any] | None:
            body = (
                await ruang.admin.get("/api/v1/public/availability", params={"site": SITE})
            ).json()
            busy = sum(f["checked_in"] for b in body["buildings"] for f in b["floors"])
            return body if busy >= 1 else None

        await eventually(checked_in, timeout=30, what="a check-in in the public counts")

        page = await ruang.page(browser, viewport=FULL_HD)  # nobody signed in
        shown = await page.goto(f"/kiosk?site={SITE}&lang=id")
        assert shown is not None and shown.status == 200
        await expect(page.locator(".topbar")).to_have_count(0)
        # No transport in this building yet: the board says there is no departure.
        await expect(page.get_by_test_id("shuttle-none")).to_be_visible()
        await expect(page.get_by_test_id("kiosk-clock")).not_to_be_empty()
        # The counts on screen are the public API's (read again: nothing moves now).
        response = await page.request.get(f"/api/v1/public/availability?site={SITE}")
        assert response.status == 200  # no session, no token: public
        public = await response.json()
        assert public["buildings"], public
        await floor_counts(page, public)
        await expect(page.get_by_test_id("kiosk-updated")).to_contain_text("Diperbarui")

        assert_no_personal_data(await page.content())
        assert_no_personal_data(await page.locator("body").inner_text())
        assert_no_personal_data(json.dumps(public))
        await screenshot(page, "kiosk")

        # English on request, same numbers.
        await page.goto(f"/kiosk?site={SITE}&lang=en")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Free desks")
        await floor_counts(page, public)

        # Without ?lang= it loads the other language to alternate: no script error.
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"/kiosk?site={SITE}")
        await floor_counts(page, public)
        assert_no_personal_data(await page.content())
        assert not errors, errors


async def test_the_kiosk_keeps_the_last_data_with_a_stale_notice_when_the_api_fails(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, viewport=FULL_HD)
        public = (await ruang.admin.get("/api/v1/public/availability")).json()
        await page.goto("/kiosk?lang=id&refresh=2")
        await floor_counts(page, public)
        stale = page.get_by_test_id("kiosk-stale")
        await expect(stale).to_be_hidden()

        async def fail(route: Route) -> None:
            await route.fulfill(
                status=500,
                content_type="application/problem+json",
                body=json.dumps({"title": "Internal error", "status": 500}),
            )

        await page.route(AVAILABILITY, fail)
        await expect(stale).to_be_visible()
        await expect(stale).to_contain_text("data terakhir")
        await floor_counts(page, public)  # still on screen

        # Back again, now with a shuttle departure: the panel shows it and the notice goes.
        await page.unroute(AVAILABILITY, fail)
        departure = datetime(2030, 1, 7, 1, 30, tzinfo=UTC).isoformat()
        with_shuttle = {
            **public,
            "shuttles": [
                {
                    "trip": "K1-0-0930",
                    "service_date": "20300107",
                    "route": "Rute KIPP 1",
                    "route_color": "1B6AC9",
                    "headsign": "KIPP",
                    "stop_id": "LOBI-UTARA",
                    "stop": "Halte Lobi Utara",
                    "scheduled_at": departure,
                    "expected_at": departure,
                    "delay_s": None,
                    "status": "scheduled",
                    "live": False,
                    "full": False,
                }
            ],
        }

        async def shuttles(route: Route) -> None:
            await route.fulfill(
                status=200, content_type="application/json", body=json.dumps(with_shuttle)
            )

        await page.route(AVAILABILITY, shuttles)
        await expect(stale).to_be_hidden()
        panel = page.get_by_test_id("kiosk-shuttles")
        await expect(panel).to_contain_text("Rute KIPP 1")
        await expect(panel).to_contain_text("Halte Lobi Utara")
        await expect(page.get_by_test_id("shuttle-none")).to_have_count(0)
