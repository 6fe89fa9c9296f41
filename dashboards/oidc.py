"""Dashboard sign-in through the building's OIDC provider: authorization code flow with PKCE.

The dashboards are a confidential (or public) OIDC client of the provider named
by `RUANG_OIDC_ISSUER_URL`. The flow, as `dashboards/login.py` drives it:

1. `GET /login/oidc?next=/map` makes a random `state` and PKCE `code_verifier`,
   keeps both (and `next`) in a short-lived, HMAC-signed, HttpOnly cookie scoped
   to `/login`, and redirects to the provider's authorization endpoint with the
   S256 `code_challenge`.
2. The provider sends the browser back to `/login/callback?code=...&state=...`;
   the state must equal the cookie's (this is what stops login CSRF: a forged
   callback has no matching cookie), then the code and verifier are exchanged at
   the token endpoint.
3. The *access token* becomes the session: the cloud verifies it with its usual
   `TokenVerifier` (JWKS, issuer, audience from `RUANG_AUTH_*`), exactly as it
   verifies API bearer tokens, so roles and sites come from the provider's claims.

Provider metadata comes from `{issuer}/.well-known/openid-configuration`, fetched
on first use and cached for the life of the process (a failed fetch is retried
on the next sign-in, so a provider that was down at start-up does not need a
restart).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import Request

from cloud.keys import OIDC_FLOW_SECRET, configured_secret
from cloud.settings import CloudSettings

# The cookie that carries state, PKCE verifier and `next` across the provider round trip.
FLOW_COOKIE = "ruang_oidc_flow"
FLOW_COOKIE_PATH = "/login"
# Long enough to type a password and do MFA at the provider, short enough that a
# leaked cookie is soon useless.
FLOW_TTL_S = 600
HTTP_TIMEOUT_S = 10.0


class OidcError(Exception):
    """A sign-in that cannot finish; `key` is the login page's message for it."""

    def __init__(self, key: str, detail: str, status_code: int = 400) -> None:
        super().__init__(detail)
        self.key, self.detail, self.status_code = key, detail, status_code


def oidc_configured(settings: CloudSettings) -> bool:
    # An empty env var (`RUANG_OIDC_ISSUER_URL=` in a .env file) means "not configured".
    return bool(settings.oidc_issuer_url) and bool(settings.oidc_client_id)


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str | None
    token_auth_methods: tuple[str, ...]


@dataclass(frozen=True)
class Flow:
    """What the callback needs to know about the sign-in it finishes."""

    state: str
    verifier: str
    next: str | None
    redirect_uri: str
    expires: float
    # A silent renewal (prompt=none): a refusal sends the browser to the login page.
    silent: bool = False


def pkce_pair() -> tuple[str, str]:
    """A (code_verifier, S256 code_challenge) pair per RFC 7636."""
    verifier = secrets.token_urlsafe(48)  # 64 chars, inside the 43..128 the RFC allows
    return verifier, s256(verifier)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcClient:
    """The dashboards' side of the code flow; one per app (`app.state.oidc`)."""

    def __init__(self, settings: CloudSettings) -> None:
        if not oidc_configured(settings):
            raise ValueError("OIDC needs RUANG_OIDC_ISSUER_URL and RUANG_OIDC_CLIENT_ID")
        self._settings = settings
        self.issuer = str(settings.oidc_issuer_url).rstrip("/")
        self.client_id = str(settings.oidc_client_id)
        self._secret = (
            settings.oidc_client_secret.get_secret_value()
            if settings.oidc_client_secret is not None
            else None
        )
        # The flow cookie's signing key, the same on every replica so a sign-in may end
        # on another one than it began: oidc_flow_secret, else derived from the client
        # secret. A public client without either gets a per-process key, in development
        # only (production refuses to start without it: cloud/keys.py).
        configured = configured_secret(settings, OIDC_FLOW_SECRET)
        if configured is not None:
            material = configured
        elif self._secret:
            material = self._secret.encode()
        else:
            material = secrets.token_bytes(32)
        self._cookie_key = hashlib.sha256(b"ruang-oidc-flow\0" + material).digest()
        self._metadata: ProviderMetadata | None = None

    # --- provider metadata ------------------------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is not None:
            return self._metadata
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
                r = await client.get(url)
                r.raise_for_status()
                doc = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(
                "login.oidc_unavailable", f"cannot read {url}: {exc}", status_code=502
            ) from None
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) for k in ("authorization_endpoint", "token_endpoint")
        ):
            raise OidcError(
                "login.oidc_unavailable", f"{url} lacks authorization_endpoint/token_endpoint", 502
            )
        # OpenID Connect Discovery 4.3: the document must name the issuer it was asked for,
        # or a misconfigured proxy could send users to someone else's provider.
        if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
            raise OidcError(
                "login.oidc_unavailable",
                f"{url} names issuer {doc.get('issuer')!r}, not {self.issuer!r}",
                502,
            )
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        self._metadata = ProviderMetadata(
            issuer=self.issuer,
            authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"],
            jwks_uri=doc.get("jwks_uri") if isinstance(doc.get("jwks_uri"), str) else None,
            token_auth_methods=tuple(str(m) for m in methods),
        )
        return self._metadata

    # --- step 1: send the browser to the provider -------------------------------------------

    def redirect_uri(self, request: Request) -> str:
        # Behind a TLS-terminating proxy the request's own URL may say http://internal:8000,
        # so production sets RUANG_OIDC_REDIRECT_URL to what is registered at the provider.
        return self._settings.oidc_redirect_url or str(request.url_for("oidc_callback"))

    async def start(
        self, request: Request, next_path: str | None, *, silent: bool = False
    ) -> tuple[str, str]:
        """(authorization URL, flow cookie value) for a new sign-in; `silent`: prompt=none."""
        meta = await self.metadata()
        verifier, challenge = pkce_pair()
        flow = Flow(
            state=secrets.token_urlsafe(24),
            verifier=verifier,
            next=next_path,
            redirect_uri=self.redirect_uri(request),
            expires=time.time() + FLOW_TTL_S,
            silent=silent,
        )
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": flow.redirect_uri,
            "scope": self._settings.oidc_scopes,
            "state": flow.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if silent:
            # OpenID Connect Core 3.1.2.1: answer at once from the provider's own session,
            # or with login_required, never with a page.
            params["prompt"] = "none"
        query = urlencode(params)
        separator = "&" if "?" in meta.authorization_endpoint else "?"
        return f"{meta.authorization_endpoint}{separator}{query}", self.seal(flow)

    # --- the flow cookie ---------------------------------------------------------------------

    def seal(self, flow: Flow) -> str:
        body = base64.urlsafe_b64encode(json.dumps(asdict(flow)).encode()).rstrip(b"=")
        mac = hmac.new(self._cookie_key, body, hashlib.sha256).digest()
        return f"{body.decode()}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    def unseal(self, value: str | None) -> Flow:
        if not value or "." not in value:
            raise OidcError("login.oidc_state", "no sign-in was started from this browser")
        body, _, mac = value.partition(".")
        expected = base64.urlsafe_b64encode(
            hmac.new(self._cookie_key, body.encode(), hashlib.sha256).digest()
        ).rstrip(b"=")
        if not hmac.compare_digest(expected, mac.encode()):
            raise OidcError("login.oidc_state", "the sign-in cookie was not made by this server")
        try:
            flow = Flow(**json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))
        except (ValueError, TypeError):
            raise OidcError("login.oidc_state", "the sign-in cookie is unreadable") from None
        if flow.expires < time.time():
            raise OidcError("login.oidc_state", "the sign-in took too long; start again")
        return flow

    # --- step 2: back from the provider -------------------------------------------------------

    def check_state(self, flow: Flow, state: str | None) -> None:
        if not state or not hmac.compare_digest(flow.state.encode(), state.encode()):
            raise OidcError(
                "login.oidc_state",
                "the state returned by the provider is not the one this browser sent",
            )

    async def exchange(self, flow: Flow, code: str) -> str:
        """The access token for `code`, redeemed with the PKCE verifier."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
        }
        auth: httpx.BasicAuth | None = None
        if self._secret is None:
            form["client_id"] = self.client_id  # public client: PKCE is its proof
        elif (
            "client_secret_basic" not in meta.token_auth_methods
            and "client_secret_post" in meta.token_auth_methods
        ):
            form |= {"client_id": self.client_id, "client_secret": self._secret}
        else:
            auth = httpx.BasicAuth(self.client_id, self._secret)
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, auth=auth) as client:
                r = await client.post(
                    meta.token_endpoint, data=form, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise OidcError("login.oidc_token", f"token endpoint unreachable: {exc}", 502) from None
        body: Any
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code != 200 or not isinstance(body, dict):
            reason = body.get("error") if isinstance(body, dict) else r.text[:200]
            raise OidcError(
                "login.oidc_token", f"token endpoint answered {r.status_code}: {reason}", 502
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise OidcError("login.oidc_token", "the token response has no access_token", 502)
        return token


def client_for(request: Request) -> OidcClient | None:
    """The app's OIDC client, made on first use; None when OIDC is not configured."""
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    if client is None:
        settings: CloudSettings = request.app.state.settings
        if not oidc_configured(settings):
            return None
        client = OidcClient(settings)
        request.app.state.oidc = client
    return client
