"""The dashboard shell: sign-in, role checks on the server, language, CSRF, strings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from cloud.people.auth import CSRF_HEADER, SESSION_COOKIE
from dashboards import LOCALES_DIR
from dashboards.i18n import LANGUAGES, table
from tests.dashboards.conftest import running_ruang, screenshot

pytestmark = pytest.mark.servers


def test_every_string_exists_in_both_languages_and_no_key_is_defined_twice() -> None:
    tables = {lang: table(lang) for lang in LANGUAGES}
    assert set(tables["id"]) == set(tables["en"])
    files = {
        lang: sorted(p.name for p in (LOCALES_DIR / lang).glob("*.json")) for lang in LANGUAGES
    }
    assert files["id"] == files["en"]
    for lang in LANGUAGES:
        for path in (LOCALES_DIR / lang).glob("*.json"):
            assert all(isinstance(v, str) and v for v in json.loads(path.read_text()).values())


async def test_signing_in_with_dev_login_lands_each_role_on_its_own_view(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser)
        await page.goto("/map")
        # Not signed in: the server sends the browser to the sign-in page, keeping the target.
        await expect(page).to_have_url(f"{ruang.base_url}/login?next=%2Fmap")
        await expect(page.locator("html")).to_have_attribute("lang", "id")
        await screenshot(page, "login")
        await page.select_option("#person", "p-siti")
        await page.get_by_role("button", name="Masuk").click()
        # The map then puts its building and floor into the URL (shareable); either is fine.
        await expect(page).to_have_url(re.compile(rf"^{re.escape(ruang.base_url)}/map(\?.*)?$"))
        await expect(page.get_by_test_id("who")).to_have_text("Siti Rahmawati")
        await page.get_by_role("button", name="Keluar").click()
        await expect(page).to_have_url(f"{ruang.base_url}/login")

        await page.select_option("#person", "p-joko")
        await page.get_by_role("button", name="Masuk").click()
        await expect(page).to_have_url(f"{ruang.base_url}/fleet")


async def test_a_technician_cannot_open_manager_analytics_even_by_typing_the_url(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, "p-joko", "technician")
        response = await page.goto("/analytics")
        assert response is not None and response.status == 403
        await expect(page.get_by_test_id("forbidden")).to_be_visible()
        # No link to it either, and its data API refuses the same session.
        await expect(page.get_by_role("link", name="Analitik")).to_have_count(0)
        api = await page.request.get("/api/v1/analytics/heatmap?from=2026-01-01&to=2026-01-02")
        assert api.status == 403


async def test_the_language_switch_is_remembered_across_pages(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, "p-ayu", "asn")
        await page.goto("/me")
        await page.get_by_role("link", name="English").click()
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        await page.goto("/kiosk")
        await expect(page.locator("html")).to_have_attribute("lang", "en")


async def test_cookie_session_writes_need_the_csrf_header(tmp_path: Path) -> None:
    async with running_ruang(tmp_path) as ruang:
        cookies = {SESSION_COOKIE: ruang.token("p-ayu", "asn")}
        async with httpx.AsyncClient(base_url=ruang.base_url, cookies=cookies) as client:
            assert (await client.get("/api/v1/me")).status_code == 200
            body = {
                "desk_id": "L1-D03",
                "person_id": "p-ayu",
                "starts_at": "2030-01-07T01:00:00Z",
                "ends_at": "2030-01-07T03:00:00Z",
            }
            forged = await client.post("/api/v1/bookings", json=body)
            assert forged.status_code == 403
            assert CSRF_HEADER in forged.json()["detail"]
            sent = await client.post("/api/v1/bookings", json=body, headers={CSRF_HEADER: "1"})
            assert sent.status_code != 403, sent.text


async def test_dev_login_is_refused_when_an_identity_provider_is_configured(
    tmp_path: Path,
) -> None:
    jwks = "http://127.0.0.1:9/jwks"  # nothing listens: dev login must not even try
    async with running_ruang(tmp_path, roster=False, auth_jwks_url=jwks) as ruang:
        async with httpx.AsyncClient(base_url=ruang.base_url) as client:
            page = await client.get("/login")
            assert page.status_code == 200 and 'action="/login/dev"' not in page.text
            r = await client.post(
                "/login/dev",
                content="person=dev-admin",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert r.status_code == 403 and SESSION_COOKIE not in r.cookies
