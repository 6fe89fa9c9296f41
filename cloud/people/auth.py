"""Bearer-token authentication and roles for the cloud API.

Tokens are JWTs. In production they come from the building's OIDC provider and
are verified against its JWKS (`RUANG_AUTH_JWKS_URL`, issuer and audience
checked). Without one the cloud signs its own tokens with an EC P-256 key in a PEM
file (`auth_dev_key_path`: created on first use in development, given to every
replica in production, cloud/keys.py) and `ruang token` mints tokens with it; that
key is never used when a JWKS URL is configured.

Claims Ruang reads, unless the provider's claim mapping (cloud/claims.py) names
others: `sub` (the person id), `roles` (list; or a single `role`; `approver`
decides pool-car requests of the person's agency),
`sites` (site ids a facility manager or technician looks after), `name`.

Every request also checks that the person has not signed out everywhere or been
deactivated since the token was issued (cloud/people/sessions.py, cached <= 60 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud.claims import KNOWN_ROLES, ClaimRefused, map_claims
from cloud.keys import ec_key, new_ec_key
from cloud.people.sessions import SessionEnded, SessionGuard
from cloud.settings import CloudSettings

# Token roles only (the roster's people.role keeps the first five): `approver` decides
# the pool-car requests of their own agency (cloud/transport/poolcars.py); `dispatcher`
# runs office transport (live map, trip assignment, service alerts; docs/security.md);
# `security` runs door rights and reads the access log of its sites (docs/access-control.md);
# `reception` lists its sites' visitors of today and checks them in and out (docs/visitors.md);
# `scim` is a ministry identity system provisioning the people of its sites (docs/scim.md);
# `dpo` (data-protection officer) searches the personal-data access audit (docs/privacy.md).
ROLES = KNOWN_ROLES
DEV_ALGORITHM = "ES256"
_ALGORITHMS = ["ES256", "RS256", "EdDSA"]


class AuthError(HTTPException):
    """401 with the Bearer challenge; rendered as problem+json by the app's handlers."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=detail,
            headers={"WWW-Authenticate": 'Bearer realm="ruang"'},
        )


class ClaimsRefusedError(AuthError):
    """A valid token whose claims the provider's claim mapping refuses (the reason says why)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the token says."""

    subject: str
    roles: frozenset[str]
    sites: frozenset[str] = frozenset()
    name: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


# --- development key ------------------------------------------------------------------------


def load_or_create_dev_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A local EC signing key; created (mode 0600) the first time it is needed.

    For tools and tests; the running cloud reads its keys through cloud/keys.py,
    which creates nothing in production.
    """
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} does not hold an EC private key")
        return key
    return new_ec_key(path)


def token_signing_key(settings: CloudSettings) -> ec.EllipticCurvePrivateKey:
    """The key of the cloud's own tokens (no JWKS): configured in production, else made here."""
    return ec_key(settings, "auth_dev_key_path")


def mint_dev_token(
    settings: CloudSettings,
    subject: str,
    roles: list[str],
    *,
    sites: list[str] | None = None,
    name: str | None = None,
    ttl_s: int = 8 * 3600,
) -> str:
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")
    key = token_signing_key(settings)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": subject,
        "roles": roles,
        "iat": now,
        "exp": now + ttl_s,
    }
    if sites:
        claims["sites"] = sites
    if name:
        claims["name"] = name
    return jwt.encode(claims, key, algorithm=DEV_ALGORITHM)


# --- verification ---------------------------------------------------------------------------


# A verified token is remembered this long (and never past its `exp`): a client sends
# the same token with every request, and checking its ES256/RS256 signature each time
# was a sizeable share of a booking's CPU (docs/performance.md). The price: a token
# whose signing key is withdrawn from the JWKS keeps working for at most this long.
VERIFIED_TTL_S = 60.0
VERIFIED_MAX = 4096


class TokenVerifier:
    """Verifies bearer tokens against the JWKS, or the dev key when no JWKS is configured."""

    def __init__(self, settings: CloudSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKClient | None = (
            jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True, lifespan=3600)
            if settings.auth_jwks_url
            else None
        )
        self._dev_public: Any = None
        self._clock = clock
        # token -> (principal, remembered until); only successes are remembered.
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def _key_for(self, token: str) -> Any:
        if self._jwks is not None:
            # PyJWKClient fetches over blocking urllib (cached afterwards): keep it off the loop.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            return signing_key.key
        if self._dev_public is None:
            self._dev_public = token_signing_key(self._settings).public_key()
        return self._dev_public

    async def verify(self, token: str) -> Principal:
        now = self._clock()
        known = self._verified.get(token)
        if known is not None:
            if now < known[1]:
                return known[0]
            del self._verified[token]
        principal = await self._verify(token)
        exp = principal.claims.get("exp")
        until = now + VERIFIED_TTL_S
        if isinstance(exp, int | float):
            until = min(until, float(exp))
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.clear()  # bounded; the next requests simply verify again
        self._verified[token] = (principal, until)
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            key = await self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=_ALGORITHMS,
                audience=self._settings.auth_audience,
                issuer=self._settings.auth_issuer,
                options={"require": ["exp", "sub", "iss"]},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("The token has expired; sign in again.") from None
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"The token's signing key is unknown: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"The token is not valid: {exc}") from None
        # Roles, sites and the person id as the provider's claim mapping says
        # (cloud/claims.py); without one, verbatim from the token as always.
        mapping = self._settings.oidc_claims.for_issuer(claims.get("iss"))
        try:
            identity = map_claims(claims, mapping)
        except ClaimRefused as exc:
            raise ClaimsRefusedError(exc.reason) from None
        return Principal(
            subject=identity.subject,
            roles=identity.roles,
            sites=identity.sites,
            name=identity.name,
            claims=claims,
        )


_bearer = HTTPBearer(auto_error=False, description="JWT from the OIDC provider or `ruang token`")


def verifier_for(request: Request) -> TokenVerifier:
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        settings: CloudSettings = request.app.state.settings
        verifier = TokenVerifier(settings)
        request.app.state.token_verifier = verifier
    return verifier


def guard_for(request: Request) -> SessionGuard | None:
    """The app's session guard; None for an app without a database (no people to check)."""
    guard: SessionGuard | None = getattr(request.app.state, "session_guard", None)
    if guard is None:
        if getattr(request.app.state, "engine", None) is None:
            return None
        settings: CloudSettings = request.app.state.settings
        guard = SessionGuard(request.app.state.engine, settings.session_check_ttl_s)
        request.app.state.session_guard = guard
    return guard


def forget(request: Request, subject: str) -> None:
    """Make this replica see a change of `subject`'s sessions at once."""
    guard = guard_for(request)
    if guard is not None:
        guard.forget(subject)


async def _still_signed_in(request: Request, principal: Principal) -> Principal:
    """The principal, unless its person signed out everywhere or was deactivated since."""
    guard = guard_for(request)
    if guard is None:
        return principal
    try:
        await guard.check(principal.subject, principal.claims.get("iat"))
    except SessionEnded as exc:
        raise AuthError(exc.reason) from None
    return principal


# The dashboards hold the same JWT in an HttpOnly cookie instead of a header.
SESSION_COOKIE = "ruang_session"
# Writes authenticated by that cookie must carry this header: a cross-site page can
# make a browser send the cookie, but not a custom header (that needs CORS, which
# the cloud does not grant), so this closes cross-site request forgery.
CSRF_HEADER = "X-Ruang-CSRF"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is not None and credentials.scheme.lower() == "bearer":
        principal = await verifier_for(request).verify(credentials.credentials)
        return await _still_signed_in(request, principal)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        if request.method not in _SAFE_METHODS and request.headers.get(CSRF_HEADER) != "1":
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"A write signed in by the session cookie needs the {CSRF_HEADER}: 1 "
                "header (the dashboards send it).",
            )
        return await _still_signed_in(request, await verifier_for(request).verify(cookie))
    raise AuthError("Sign in: this endpoint needs a bearer token.")


async def session_user(request: Request) -> Principal | None:
    """The dashboard session's user, or None when there is no valid session cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return await _still_signed_in(request, await verifier_for(request).verify(cookie))
    except AuthError:
        return None


CurrentUser = Annotated[Principal, Depends(authenticate)]


def require_roles(*roles: str) -> Any:
    """A dependency that lets through only callers holding one of `roles`."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}")

    async def check(user: CurrentUser) -> Principal:
        if not user.has(*roles):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"This needs one of the roles: {', '.join(roles)}.",
            )
        return user

    return Depends(check)
