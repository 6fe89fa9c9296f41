"""Bearer JWT authentication: the dev key, a real JWKS endpoint, roles, problem+json errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from cloud.people.auth import CurrentUser, Principal, mint_dev_token, require_roles
from cloud.problems import install_problem_handlers
from cloud.settings import CloudSettings


def make_app(settings: CloudSettings) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    install_problem_handlers(app)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, object]:
        return {"sub": user.subject, "roles": sorted(user.roles), "sites": sorted(user.sites)}

    @app.get("/managers-only")
    async def managers(user: Principal = require_roles("facility_manager", "admin")) -> str:
        return user.subject

    return app


@pytest.fixture
def settings(tmp_path: Path) -> CloudSettings:
    return CloudSettings(
        auth_dev_key_path=tmp_path / "dev.pem",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3",
    )


async def get(app: FastAPI, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        return await client.get(path, headers=headers)


async def test_dev_token_from_ruang_token_is_accepted_with_its_roles(
    settings: CloudSettings,
) -> None:
    token = mint_dev_token(settings, "asn-0001", ["asn"], sites=["ikn"], name="Siti")
    r = await get(make_app(settings), "/me", token)
    assert r.status_code == 200
    assert r.json() == {"sub": "asn-0001", "roles": ["asn"], "sites": ["ikn"]}


async def test_dev_key_file_is_created_private(settings: CloudSettings) -> None:
    mint_dev_token(settings, "x", ["admin"])
    assert settings.auth_dev_key_path.stat().st_mode & 0o077 == 0


async def test_missing_token_is_401_problem_with_bearer_challenge(settings: CloudSettings) -> None:
    r = await get(make_app(settings), "/me")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "bearer token" in r.json()["detail"]


@pytest.mark.parametrize(
    "defect", ["expired", "wrong_issuer", "wrong_audience", "tampered", "alg_none", "garbage"]
)
async def test_bad_tokens_are_refused_with_a_reason(settings: CloudSettings, defect: str) -> None:
    good = mint_dev_token(settings, "asn-0001", ["asn"])
    if defect == "expired":
        token = mint_dev_token(settings, "asn-0001", ["asn"], ttl_s=-120)
    elif defect in {"wrong_issuer", "wrong_audience"}:
        other = settings.model_copy(
            update={"auth_issuer": "someone-else"}
            if defect == "wrong_issuer"
            else {"auth_audience": "other-app"}
        )
        token = mint_dev_token(other, "asn-0001", ["asn"])
    elif defect == "tampered":
        head, _body, sig = good.split(".")
        forged = jwt.utils.base64url_encode(
            json.dumps(
                {**jwt.decode(good, options={"verify_signature": False}), "roles": ["admin"]}
            ).encode()
        ).decode()
        token = f"{head}.{forged}.{sig}"
    elif defect == "alg_none":
        # An unsigned token claiming admin: the verifier must not accept "none".
        claims = {**jwt.decode(good, options={"verify_signature": False}), "roles": ["admin"]}
        token = jwt.encode(claims, key=None, algorithm="none")
    else:
        token = "not-a-jwt"
    r = await get(make_app(settings), "/me", token)
    assert r.status_code == 401, r.text
    assert r.json()["title"]


async def test_role_check_is_403_for_an_asn_and_200_for_a_facility_manager(
    settings: CloudSettings,
) -> None:
    app = make_app(settings)
    asn = mint_dev_token(settings, "asn-0001", ["asn"])
    fm = mint_dev_token(settings, "fm-01", ["facility_manager"], sites=["ikn"])
    denied = await get(app, "/managers-only", asn)
    assert denied.status_code == 403 and "facility_manager" in denied.json()["detail"]
    assert (await get(app, "/managers-only", fm)).status_code == 200


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A real HTTP server on loopback publishing one RSA key as a JWKS, like an OIDC provider."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    finally:
        server.shutdown()
        server.server_close()


async def test_tokens_from_an_oidc_provider_verify_against_its_jwks(
    tmp_path: Path, jwks_server: tuple[str, rsa.RSAPrivateKey]
) -> None:
    url, key = jwks_server
    settings = CloudSettings(
        auth_jwks_url=url,
        auth_issuer="https://sso.ikn.example",
        auth_audience="ruang",
        auth_dev_key_path=tmp_path / "unused.pem",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3",
    )
    now = int(time.time())
    claims = {
        "iss": "https://sso.ikn.example",
        "aud": "ruang",
        "sub": "fm-07",
        "roles": ["facility_manager"],
        "sites": ["ikn"],
        "iat": now,
        "exp": now + 600,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    app = make_app(settings)
    r = await get(app, "/me", token)
    assert r.status_code == 200 and r.json()["sub"] == "fm-07"
    # The dev key is not trusted once a provider is configured.
    dev = mint_dev_token(settings.model_copy(update={"auth_jwks_url": None}), "x", ["admin"])
    assert (await get(app, "/me", dev)).status_code == 401
