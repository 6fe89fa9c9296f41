"""The reception kiosk page in Chromium under the strict CSP: today's visitors by name, search,
check-in by a typed pass code with a temporary card, the host told, check-out; other roles 403."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from cloud.db.engine import make_engine
from cloud.db.tables import VISITS
from cloud.people.auth import SESSION_COOKIE, mint_dev_token
from tests.dashboards.conftest import SITE, running_ruang, screenshot, wait_in_page
from tests.helpers import auth_headers

pytestmark = pytest.mark.servers


async def test_reception_checks_a_visitor_in_by_typed_code_and_out_and_the_host_is_told(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        start = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)
        ids = {}
        for name, org in (("Rina Kusuma", "PT Mitra Nusantara"), ("Dewi Anggraini", "Unmul")):
            r = await ruang.admin.post("/api/v1/visits", json={
                "guest_name": name, "guest_email": "tamu@mitra.example", "organisation": org,
                "host_person_id": "p-ayu", "site_id": SITE, "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=2)).isoformat(),
            })  # fmt: skip
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        engine = make_engine(ruang.settings.database_url)
        try:
            async with engine.connect() as conn:
                code = await conn.scalar(
                    select(VISITS.c.pass_code).where(VISITS.c.id == ids["Rina Kusuma"])
                )
        finally:
            await engine.dispose()
        assert code is not None

        context = await ruang.context(browser)
        token = mint_dev_token(ruang.settings, "p-resepsionis", ["reception"], sites=[SITE])
        await context.add_cookies([{"name": SESSION_COOKIE, "value": token,
                                    "url": ruang.base_url, "httpOnly": True,
                                    "sameSite": "Lax"}])  # fmt: skip
        page = await context.new_page()
        page.set_default_timeout(15_000)
        await page.goto("/reception")
        await wait_in_page(page, "() => document.getElementById('reception-root').dataset.ready")
        table = page.get_by_test_id("reception-table")
        await expect(table.locator("tbody tr")).to_have_count(2)
        await expect(table).to_contain_text("Rina Kusuma")
        # The camera where the browser can scan; otherwise it says to type the code.
        camera = page.get_by_test_id("reception-camera")
        note = page.get_by_test_id("reception-camera-note")
        assert await camera.is_visible() or "Ketik kode pass" in (await note.text_content() or "")

        await page.get_by_test_id("reception-search").fill("unmul")
        await expect(table.locator("tbody tr")).to_have_count(1)
        await expect(table).to_contain_text("Dewi Anggraini")
        await page.get_by_test_id("reception-search").fill("")
        await expect(table.locator("tbody tr")).to_have_count(2)

        # Read out in two groups, lower case: still the pass.
        await page.get_by_test_id("reception-code").fill(f"{code[:5].lower()} {code[5:]}")
        await page.get_by_test_id("reception-card").fill("04C0FFEE0042")
        await page.get_by_role("button", name="Check-in", exact=True).first.click()
        await expect(page.get_by_test_id("reception-result")).to_contain_text(
            "Rina Kusuma sudah check-in"
        )
        row = table.locator(f"tr[data-visit='{ids['Rina Kusuma']}']")
        await expect(row).to_have_attribute("data-status", "checked_in")
        await screenshot(page, "reception_kiosk")

        host = auth_headers(ruang.settings, "p-ayu", ("asn",))
        r = await ruang.admin.get("/api/v1/me/notifications", headers=host)
        assert any(n["kind"] == "visitor_arrived" and "Rina Kusuma" in n["body"]
                   for n in r.json()["items"])  # fmt: skip

        await page.get_by_test_id(f"checkout-{ids['Rina Kusuma']}").click()
        await expect(row).to_have_attribute("data-status", "checked_out")
        await expect(page.get_by_test_id("reception-result")).to_contain_text("sudah check-out")
        # By search and a click: the other guest, no card.
        await page.get_by_test_id(f"checkin-{ids['Dewi Anggraini']}").click()
        await expect(table.locator(f"tr[data-visit='{ids['Dewi Anggraini']}']")).to_have_attribute(
            "data-status", "checked_in"
        )

        # Other roles get the 403 page and never the names.
        for person, role in (("p-budi", "asn"), ("p-siti", "facility_manager")):
            other = await ruang.page(browser, person, role)
            response = await other.goto("/reception")
            assert response is not None and response.status == 403
            assert "Rina" not in await other.content()
