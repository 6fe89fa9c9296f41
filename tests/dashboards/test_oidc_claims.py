"""Claim mapping, just-in-time people and session ends, against a real OIDC provider process.

The provider is the small one of test_oidc.py (uvicorn on a loopback port, ES256
tokens, JWKS). Ruang runs as in production (tokens from that provider only) with a
claim mapping shaped like an IKD or ministry Keycloak set-up: person id in `sub`,
agency in `instansi`, unit in `unit_kerja`, and Ruang roles only through a table of
groups. Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from cloud.db.tables import PEOPLE, PERSON_IDENTITIES
from cloud.people import sessions
from cloud.people.auth import CSRF_HEADER, SESSION_COOKIE
from dashboards.renewal import RENEW_COOKIE
from tests.dashboards.conftest import SITE, Ruang, running_ruang
from tests.dashboards.test_oidc import (
    API_AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    Provider,
    provider_running,
)

pytestmark = pytest.mark.servers

PERSON = "ikd-3174012345"


def mapping(**overrides: Any) -> dict[str, Any]:
    return {
        "providers": [
            {
                "agency_claim": "instansi",
                "unit_claim": "unit_kerja",
                "roles_claim": None,
                "sites_claim": None,
                "groups_claim": "groups",
                "groups": {
                    "ikn-asn": {"roles": ["asn"]},
                    "ikn-fm-site-a": {"roles": ["facility_manager"], "sites": [SITE]},
                },
                "require_role": True,
                "unknown_person": "create",
                **overrides,
            }
        ]
    }


def ikd_user(*groups: str) -> dict[str, Any]:
    return {
        "sub": PERSON,
        "name": "Dewi Lestari",
        "instansi": "Kementerian PUPR",
        "unit_kerja": "Direktorat Bina Penataan Bangunan",
        "groups": list(groups),
    }


@contextlib.asynccontextmanager
async def ruang_mapped(
    tmp_path: Path, database_url: str, claims: dict[str, Any], **extra: Any
) -> AsyncIterator[tuple[Ruang, Provider]]:
    async with (
        provider_running() as provider,
        running_ruang(
            tmp_path,
            database_url,
            roster=False,
            auth_jwks_url=f"{provider.url}/jwks",
            auth_issuer=provider.url,
            auth_audience=API_AUDIENCE,
            oidc_issuer_url=provider.url,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            oidc_claims=claims,
            **extra,
        ) as ruang,
    ):
        yield ruang, provider


async def sign_in(http: httpx.AsyncClient) -> httpx.Response:
    """The whole code flow: Ruang -> provider -> Ruang's callback; the callback's answer."""
    start = await http.get("/login/oidc", params={"lang": "en"})
    assert start.status_code == 303, start.text
    back = await http.get(start.headers["location"])
    assert back.status_code == 302, back.text
    return await http.get(back.headers["location"])


def admin_token(provider: Provider) -> str:
    """An access token of the provider for an administrator, as its /token would issue it."""
    now = int(time.time())
    claims = {"iss": provider.url, "aud": API_AUDIENCE, "iat": now, "exp": now + 600}
    claims |= {"sub": "ikd-admin", "name": "Admin", "groups": ["ikn-admin"]}
    return jwt.encode(claims, provider.key, algorithm="ES256", headers={"kid": "idp-1"})


async def stored(database_url: str, person_id: str) -> dict[str, Any] | None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        PEOPLE.c.kind,
                        PEOPLE.c.name,
                        PEOPLE.c.agency,
                        PEOPLE.c.role,
                        PEOPLE.c.site_id,
                        PERSON_IDENTITIES.c.unit,
                        PERSON_IDENTITIES.c.issuer,
                    )
                    .select_from(PEOPLE.outerjoin(PERSON_IDENTITIES))
                    .where(PEOPLE.c.id == person_id)
                )
            ).first()
    finally:
        await engine.dispose()
    return None if row is None else dict(row._mapping)


async def test_a_sign_in_with_mapped_groups_creates_the_person_with_their_roles_and_sites(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        ruang_mapped(tmp_path, database_url, mapping()) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url) as http,
    ):
        provider.user = ikd_user("ikn-asn", "ikn-fm-site-a")
        done = await sign_in(http)
        assert done.status_code == 303, done.text
        assert SESSION_COOKIE in http.cookies
        assert await stored(database_url, PERSON) == {
            "kind": "asn",
            "name": "Dewi Lestari",
            "agency": "Kementerian PUPR",
            "role": "facility_manager",
            "site_id": SITE,
            "unit": "Direktorat Bina Penataan Bangunan",
            "issuer": provider.url,
        }
        me = await http.get("/api/v1/me")
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "Dewi Lestari"
        # The mapped role and site open the facility manager's people list of that site...
        people = await http.get("/api/v1/people", params={"site": SITE})
        assert people.status_code == 200, people.text
        assert [p["id"] for p in people.json()] == [PERSON]
        # ...and only that site's.
        other = await http.get("/api/v1/people", params={"site": "another-site"})
        assert other.status_code == 404, other.text

        # A second sign-in finds the person and creates nobody; an ASN-only group
        # does not open the manager's list.
        provider.user = ikd_user("ikn-asn")
        async with httpx.AsyncClient(base_url=ruang.base_url) as second:
            assert (await sign_in(second)).status_code == 303
            assert (await second.get("/api/v1/people")).status_code == 403
            assert (await second.get("/api/v1/me")).status_code == 200


async def test_an_unmapped_group_is_refused_with_the_reason_on_the_page_and_the_api(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        ruang_mapped(tmp_path, database_url, mapping()) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url) as http,
    ):
        provider.user = ikd_user("ikn-asn", "bappenas-keuangan")
        refused = await sign_in(http)
        assert refused.status_code == 403
        assert "Ruang tidak dapat memasukkan akun instansi ini" in html.unescape(refused.text)
        assert "bappenas-keuangan" in html.unescape(
            refused.text
        ) and "role mapping" in html.unescape(refused.text)
        assert SESSION_COOKIE not in http.cookies
        assert await stored(database_url, PERSON) is None

        # The same provider token as an API bearer: problem+json with the same reason.
        now = int(time.time())
        token = jwt.encode(
            {"iss": provider.url, "aud": API_AUDIENCE, "iat": now, "exp": now + 600}
            | ikd_user("bappenas-keuangan"),
            provider.key,
            algorithm="ES256",
            headers={"kid": "idp-1"},
        )
        api = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 401
        assert api.headers["content-type"].startswith("application/problem+json")
        assert "bappenas-keuangan" in api.json()["detail"]

        # A token with no mapped role at all is refused too (require_role).
        provider.user = ikd_user()
        none = await sign_in(http)
        assert none.status_code == 403 and "no role that Ruang maps" in html.unescape(none.text)


async def test_without_just_in_time_creation_an_unknown_person_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        ruang_mapped(tmp_path, database_url, mapping(unknown_person="refuse")) as (
            ruang,
            provider,
        ),
        httpx.AsyncClient(base_url=ruang.base_url) as http,
    ):
        provider.user = ikd_user("ikn-asn")
        refused = await sign_in(http)
        assert refused.status_code == 403
        assert f"no person '{PERSON}' in Ruang" in html.unescape(refused.text)
        assert SESSION_COOKIE not in http.cookies
        assert await stored(database_url, PERSON) is None


async def test_claims_that_do_not_suffice_create_nobody(tmp_path: Path, database_url: str) -> None:
    async with (
        ruang_mapped(tmp_path, database_url, mapping()) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url) as http,
    ):
        provider.user = ikd_user("ikn-asn")
        del provider.user["instansi"]
        refused = await sign_in(http)
        assert refused.status_code == 403 and "did not give their agency" in html.unescape(
            refused.text
        )
        assert await stored(database_url, PERSON) is None


async def test_sign_out_everywhere_ends_the_sessions_on_other_devices(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        ruang_mapped(tmp_path, database_url, mapping()) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url) as laptop,
        httpx.AsyncClient(base_url=ruang.base_url) as phone,
    ):
        # The laptop signed in a while ago (its token was issued 30 s back).
        provider.user = ikd_user("ikn-asn") | {"iat": int(time.time()) - 30}
        assert (await sign_in(laptop)).status_code == 303
        assert (await laptop.get("/api/v1/me")).status_code == 200
        provider.user = ikd_user("ikn-asn")
        assert (await sign_in(phone)).status_code == 303

        out = await phone.post("/api/v1/me/sign-out-everywhere", headers={CSRF_HEADER: "1"})
        assert out.status_code == 200, out.text
        assert out.json() == {"person_id": PERSON, "session_epoch": 1, "active": True}
        ended = await laptop.get("/api/v1/me")
        assert ended.status_code == 401 and "signed out everywhere" in ended.json()["detail"]
        # The dashboards treat the dead cookie as signed out.
        assert (await laptop.get("/map")).status_code in (302, 303, 307)

        # Signing in again works at once.
        async with httpx.AsyncClient(base_url=ruang.base_url) as again:
            assert (await sign_in(again)).status_code == 303
            assert (await again.get("/api/v1/me")).status_code == 200
            # The dashboards' own button does the same and clears its cookie.
            gone = await again.post("/logout/everywhere")
            assert gone.status_code == 303 and gone.headers["location"] == "/login"
            assert SESSION_COOKIE not in again.cookies


async def test_a_deactivated_persons_session_is_refused_after_the_cache_window(
    tmp_path: Path, database_url: str
) -> None:
    claims = mapping()
    claims["providers"][0]["groups"]["ikn-admin"] = {"roles": ["admin"]}
    async with (
        ruang_mapped(tmp_path, database_url, claims, session_check_ttl_s=0.5) as (
            ruang,
            provider,
        ),
        httpx.AsyncClient(base_url=ruang.base_url) as http,
    ):
        provider.user = ikd_user("ikn-asn")
        assert (await sign_in(http)).status_code == 303
        assert (await http.get("/api/v1/me")).status_code == 200  # cached as active now

        # Another replica deactivates the person: this one learns it when its cache expires.
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                assert await sessions.set_active(conn, PERSON, False) == 1
        finally:
            await engine.dispose()
        status = 200
        for _ in range(100):
            status = (await http.get("/api/v1/me")).status_code
            if status == 401:
                break
            await asyncio.sleep(0.05)
        assert status == 401
        refused = await http.get("/api/v1/me")
        assert "deactivated" in refused.json()["detail"]
        # Nor can the person sign in again.
        async with httpx.AsyncClient(base_url=ruang.base_url) as again:
            back = await sign_in(again)
            assert back.status_code == 403 and "deactivated" in html.unescape(back.text)

        # An administrator reactivates through the API; signing in works again.
        admin = {"Authorization": f"Bearer {admin_token(provider)}"}
        on = await http.post(f"/api/v1/people/{PERSON}/activate", headers=admin)
        assert on.status_code == 200 and on.json()["active"] is True, on.text
        async with httpx.AsyncClient(base_url=ruang.base_url) as again:
            assert (await sign_in(again)).status_code == 303
            assert (await again.get("/api/v1/me")).status_code == 200
            # Deactivation through the API applies on this replica at once.
            off = await http.post(f"/api/v1/people/{PERSON}/deactivate", headers=admin)
            assert off.status_code == 200 and off.json()["active"] is False
            assert (await again.get("/api/v1/me")).status_code == 401
        # An unknown person is a 404; a non-admin may not.
        missing = await http.post("/api/v1/people/nobody/deactivate", headers=admin)
        assert missing.status_code == 404
        assert (await http.post(f"/api/v1/people/{PERSON}/activate")).status_code in (401, 403)
        # Each administrator's change is in the admin audit log; the refused ones are not.
        log = await http.get("/api/v1/audit", params={"target": f"person:{PERSON}"}, headers=admin)
        assert log.status_code == 200, log.text
        actions = [e["action"] for e in log.json()["items"]]
        assert actions == ["person.deactivate", "person.activate"]


async def lapse(http: httpx.AsyncClient) -> None:
    """What the browser does when the session cookie's max-age (the token's life) is over."""
    http.cookies.delete(SESSION_COOKIE)


async def test_a_lapsed_session_is_renewed_silently_while_the_provider_session_lives(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        ruang_mapped(tmp_path, database_url, mapping()) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url) as http,
    ):
        provider.user = ikd_user("ikn-asn")
        provider.token_ttl_s = 120  # a short session
        assert (await sign_in(http)).status_code == 303
        assert RENEW_COOKIE in http.cookies
        await lapse(http)

        # The page sends the browser to /login, which goes through the provider with
        # prompt=none and comes back signed in, without any page in between.
        page = await http.get("/map")
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
        login = await http.get(page.headers["location"])
        assert login.status_code == 303
        assert login.headers["location"] == "/login/oidc?silent=1&next=%2Fmap"
        start = await http.get(login.headers["location"])
        assert parse_qs(urlsplit(start.headers["location"]).query)["prompt"] == ["none"]
        back = await http.get(start.headers["location"])
        done = await http.get(back.headers["location"])
        assert done.status_code == 303 and done.headers["location"] == "/map"
        assert (await http.get("/api/v1/me")).status_code == 200

        # Without a provider session the renewal ends on the ordinary login page.
        provider.sso = False
        await lapse(http)
        refused = await http.get("/login?next=%2Fmap", follow_redirects=True)
        assert refused.status_code == 200 and refused.url.path == "/login"
        assert refused.url.params["next"] == "/map"
        assert 'href="/login/oidc' in refused.text and 'role="alert"' not in refused.text
        assert SESSION_COOKIE not in http.cookies


async def test_a_session_signed_out_everywhere_is_not_renewed_silently(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        ruang_mapped(tmp_path, database_url, mapping()) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url) as laptop,
        httpx.AsyncClient(base_url=ruang.base_url) as phone,
    ):
        provider.user = ikd_user("ikn-asn") | {"iat": int(time.time()) - 30}
        assert (await sign_in(laptop)).status_code == 303
        provider.user = ikd_user("ikn-asn")
        assert (await sign_in(phone)).status_code == 303
        out = await phone.post("/api/v1/me/sign-out-everywhere", headers={CSRF_HEADER: "1"})
        assert out.status_code == 200
        # The provider's own session is alive, yet the laptop gets the login page.
        login = await laptop.get("/login")
        assert login.status_code == 200 and 'href="/login/oidc' in login.text
        before = len(provider.authorize_requests)
        assert (await laptop.get("/api/v1/me")).status_code == 401
        assert len(provider.authorize_requests) == before

        # Nor after signing out of this device: the renewal hint goes with the session.
        assert (await phone.post("/logout")).status_code == 303
        assert RENEW_COOKIE not in phone.cookies
        login = await phone.get("/login")
        assert login.status_code == 200 and len(provider.authorize_requests) == before


async def test_the_end_all_sessions_button_signs_the_other_devices_out(
    tmp_path: Path, database_url: str, browser: Browser
) -> None:
    async with (
        ruang_mapped(tmp_path, database_url, mapping()) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url) as tablet,
    ):
        provider.user = ikd_user("ikn-asn") | {"iat": int(time.time()) - 30}
        assert (await sign_in(tablet)).status_code == 303
        provider.user = ikd_user("ikn-asn")
        page = await ruang.page(browser)
        await page.goto("/login/oidc")
        await expect(page.get_by_test_id("who")).to_have_text("Dewi Lestari")
        await page.get_by_role("button", name="Akhiri semua sesi").click()
        await expect(page).to_have_url(f"{ruang.base_url}/login")
        ended = await tablet.get("/api/v1/me")
        assert ended.status_code == 401 and "signed out everywhere" in ended.json()["detail"]
