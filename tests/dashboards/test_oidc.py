"""Dashboard sign-in through a real (tiny) OIDC provider: code flow, PKCE, state, errors.

The provider below is a real HTTP server (FastAPI under uvicorn on a loopback
port) with the endpoints a Ruang deployment talks to: discovery, /authorize
(which signs "the user" in at once and redirects back with a code), /token
(which checks client credentials and the PKCE verifier, then returns an ES256
access token with roles/sites/name claims) and /jwks. The cloud is configured
as production would be: its JWT verifier trusts only that provider's JWKS.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from playwright.async_api import Browser, expect

from cloud.people.auth import SESSION_COOKIE
from dashboards.oidc import FLOW_COOKIE
from launch.devservers import free_port
from tests.dashboards.conftest import SITE, Ruang, running_ruang, screenshot

pytestmark = pytest.mark.servers

CLIENT_ID = "ruang-dashboards"
CLIENT_SECRET = "s3cret-of-the-dashboards"
API_AUDIENCE = "ruang-api"


@dataclass
class Provider:
    """A minimal OIDC provider; `user` is who /authorize signs in, no questions asked."""

    url: str = ""
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    user: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "p-siti",
            "name": "Siti Rahmawati",
            "roles": ["facility_manager"],
            "sites": [SITE],
        }
    )
    deny: bool = False
    # Whether the provider still has its own session for the user: without one a
    # `prompt=none` request is answered with login_required (OpenID Connect Core 3.1.2.6).
    sso: bool = True
    token_ttl_s: int = 900
    audience: str = API_AUDIENCE
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
            return {"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "ES256"}]}

        @app.get("/authorize")
        async def authorize(request: Request) -> Response:
            q = dict(request.query_params)
            self.authorize_requests.append(q)
            if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            back = {"state": q.get("state", "")}
            if q.get("prompt") == "none" and not self.sso:
                back |= {"error": "login_required"}
            elif self.deny:
                back |= {"error": "access_denied", "error_description": "not in the IKN staff"}
            else:
                code = secrets.token_urlsafe(16)
                self.codes[code] = q
                back["code"] = code
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode(back)}", status_code=302)

        @app.post("/token")
        async def token(request: Request) -> Response:
            # The body is application/x-www-form-urlencoded (RFC 6749 4.1.3).
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            self.token_requests.append(form)
            grant_type, code = form.get("grant_type"), form.get("code", "")
            redirect_uri, code_verifier = form.get("redirect_uri"), form.get("code_verifier", "")
            basic = request.headers.get("authorization", "")
            creds = (
                base64.b64decode(basic.removeprefix("Basic ")).decode().split(":", 1)
                if basic.startswith("Basic ")
                else [form.get("client_id", ""), form.get("client_secret", "")]
            )
            if creds != [CLIENT_ID, CLIENT_SECRET]:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            asked = self.codes.pop(code, None)
            if (
                grant_type != "authorization_code"
                or asked is None
                or asked["redirect_uri"] != redirect_uri
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            digest = hashlib.sha256(code_verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != asked["code_challenge"]:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"}, 400
                )
            now = int(time.time())
            access = jwt.encode(
                {
                    "iss": self.url,
                    "aud": self.audience,
                    "iat": now,
                    "exp": now + self.token_ttl_s,
                    **self.user,
                },
                self.key,
                algorithm="ES256",
                headers={"kid": "idp-1"},
            )
            return JSONResponse(
                {"access_token": access, "token_type": "Bearer", "expires_in": self.token_ttl_s}
            )

        return app


@contextlib.asynccontextmanager
async def provider_running() -> AsyncIterator[Provider]:
    provider = Provider()
    port = free_port()
    provider.url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(
            provider.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                await asyncio.sleep(0.02)
        yield provider
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def ruang_with_sso(tmp_path: Path) -> AsyncIterator[tuple[Ruang, Provider]]:
    """Ruang configured like production: tokens from the provider only, OIDC sign-in on."""
    async with (
        provider_running() as provider,
        running_ruang(
            tmp_path,
            roster=False,
            auth_jwks_url=f"{provider.url}/jwks",
            auth_issuer=provider.url,
            auth_audience=API_AUDIENCE,
            oidc_issuer_url=provider.url,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
        ) as ruang,
    ):
        yield ruang, provider


async def test_the_agency_account_button_signs_a_facility_manager_in_to_the_map(
    tmp_path: Path, browser: Browser
) -> None:
    async with ruang_with_sso(tmp_path) as (ruang, provider):
        page = await ruang.page(browser)
        await page.goto("/map")
        await expect(page).to_have_url(f"{ruang.base_url}/login?next=%2Fmap")
        # A production server never offers "pick who you are".
        await expect(page.locator("#person")).to_have_count(0)
        await screenshot(page, "login_oidc")
        await page.get_by_role("link", name="Masuk dengan akun instansi").click()
        # The map view may add its building/floor to the address once it has loaded.
        await expect(page).to_have_url(re.compile(rf"{re.escape(ruang.base_url)}/map(\?.*)?$"))
        await expect(page.get_by_test_id("who")).to_have_text("Siti Rahmawati")
        assert len(provider.authorize_requests) == 1 and len(provider.token_requests) == 1
        cookies = {c["name"]: c for c in await page.context.cookies()}
        assert cookies[SESSION_COOKIE]["httpOnly"]
        # The flow cookie is spent once the callback has used it.
        assert FLOW_COOKIE not in cookies


async def test_the_pkce_verifier_sent_to_the_token_endpoint_matches_the_challenge(
    tmp_path: Path,
) -> None:
    async with (
        ruang_with_sso(tmp_path) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url) as http,
    ):
        r = await http.get("/login/oidc", params={"next": "/fleet"})
        assert r.status_code == 303
        location = urlsplit(r.headers["location"])
        assert (
            f"{location.scheme}://{location.netloc}{location.path}" == f"{provider.url}/authorize"
        )
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert query["code_challenge_method"] == "S256"
        assert query["scope"] == "openid profile" and query["client_id"] == CLIENT_ID
        assert query["redirect_uri"] == f"{ruang.base_url}/login/callback"
        assert len(query["state"]) >= 16
        back = await http.get(r.headers["location"])  # the provider's redirect
        done = await http.get(back.headers["location"])  # the callback
        assert done.status_code == 303 and done.headers["location"] == "/fleet"
        assert SESSION_COOKIE in done.cookies

        challenge = provider.authorize_requests[0]["code_challenge"]
        verifier = provider.token_requests[0]["code_verifier"]
        assert 43 <= len(verifier) <= 128
        digest = hashlib.sha256(verifier.encode()).digest()
        assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
        # The verifier never went through the browser's address bar.
        assert verifier not in r.headers["location"]
        # The session works on the API: the provider's token is the cloud's bearer.
        mine = await http.get("/api/v1/bookings")
        assert mine.status_code == 200, mine.text
        assert (
            await httpx.AsyncClient(base_url=ruang.base_url).get("/api/v1/bookings")
        ).status_code == 401


async def test_a_callback_with_a_wrong_state_is_refused_and_the_code_is_not_redeemed(
    tmp_path: Path,
) -> None:
    async with (
        ruang_with_sso(tmp_path) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url) as http,
    ):
        r = await http.get("/login/oidc")
        back = await http.get(r.headers["location"])
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
        refused = await http.get("/login/callback", params={"code": code, "state": "forged"})
        assert refused.status_code == 400
        assert "tidak dapat diverifikasi" in refused.text
        assert SESSION_COOKIE not in refused.cookies and SESSION_COOKIE not in http.cookies
        # A callback from a browser that never started a sign-in (login CSRF) is refused too.
        async with httpx.AsyncClient(base_url=ruang.base_url) as stranger:
            other = await stranger.get(
                "/login/callback", params={"code": code, "state": "x", "lang": "en"}
            )
            assert other.status_code == 400 and "could not be verified" in other.text
        assert provider.token_requests == []


async def test_a_denied_sign_in_and_a_token_for_another_audience_show_clear_messages(
    tmp_path: Path,
) -> None:
    async with (
        ruang_with_sso(tmp_path) as (ruang, provider),
        httpx.AsyncClient(base_url=ruang.base_url, follow_redirects=True) as http,
    ):
        provider.deny = True
        denied = await http.get("/login/oidc")
        assert denied.status_code == 403 and denied.url.path == "/login/callback"
        assert "tidak mengizinkan proses masuk ini" in denied.text

        provider.deny, provider.audience = False, "some-other-app"
        wrong = await http.get("/login/oidc")
        assert wrong.status_code == 401
        assert "tidak dapat menerima token aksesnya" in wrong.text
        assert SESSION_COOKIE not in http.cookies
