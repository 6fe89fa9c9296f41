"""Signing in and out of the dashboards.

The session is the cloud's own JWT kept in an HttpOnly, SameSite=Lax cookie, so
the API checks the same token whether it comes from a script (bearer header) or
a browser (cookie). Two ways to get one:

- production: the building's OIDC provider (`/login/oidc` -> provider ->
  `/login/callback`, code flow with PKCE, see `dashboards/oidc.py`); its access
  token, verified like any API bearer token, becomes the session;
- local use and demos: *dev login*, which lists the people in the database and
  mints a dev token for the one picked. It is refused whenever a JWKS is
  configured, so a production cloud can never hand out tokens this way.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.claims import ClaimRefused, map_claims
from cloud.db.models import Person, Site
from cloud.deps import EngineDep, SettingsDep
from cloud.errors import NotFound
from cloud.people.auth import (
    ROLES,
    SESSION_COOKIE,
    AuthError,
    ClaimsRefusedError,
    Principal,
    forget,
    mint_dev_token,
    session_user,
    verifier_for,
)
from cloud.people.sessions import provision, sign_out_everywhere
from cloud.settings import CloudSettings
from dashboards.oidc import FLOW_COOKIE, FLOW_COOKIE_PATH, FLOW_TTL_S, OidcError, client_for
from dashboards.renewal import forget_renewal, remember, renewable
from dashboards.web import home_for, render

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

# Signing in as this id gives an admin without a person record (first run, no roster yet).
DEV_ADMIN = "dev-admin"


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect would make the login page a phishing aid."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def set_session(
    response: Response, settings: CloudSettings, token: str, user: Principal | None = None
) -> None:
    max_age = settings.session_ttl_s
    exp = user.claims.get("exp") if user is not None else None
    if isinstance(exp, int | float):
        # A provider's token may die before our TTL: the cookie should not outlive it.
        max_age = max(1, min(max_age, int(exp - time.time())))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
        path="/",
    )


def login_error(
    request: Request,
    settings: CloudSettings,
    error: str,
    *,
    status_code: int,
    next_path: str | None = None,
    detail: str | None = None,
) -> Response:
    """The login page again, with `error` (a message key) and the ways to sign in."""
    return render(
        request,
        "login.html",
        user=None,
        status_code=status_code,
        people=[],
        dev_login=settings.dev_login_enabled,
        oidc=client_for(request) is not None,
        next=next_path or "",
        error=error,
        error_detail=detail,
    )


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, settings: SettingsDep, engine: EngineDep) -> Response:
    target = safe_next(request.query_params.get("next"))
    if (
        client_for(request) is not None
        and await session_user(request) is None
        and await renewable(request)
    ):
        # A lapsed OIDC session: renew it through the provider without a page. The hint
        # goes, so a refusal (login_required) lands on this page and not in a loop.
        query = urlencode({"silent": "1", "next": target} if target else {"silent": "1"})
        response = RedirectResponse(f"/login/oidc?{query}", status_code=303)
        forget_renewal(response)
        return response
    people: list[dict[str, Any]] = []
    if settings.dev_login_enabled:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(Person.id, Person.name, Person.role, Person.agency)
                .order_by(Person.role, Person.name)
                .limit(200)
            )
            people = [dict(r._mapping) for r in rows]
    return render(
        request,
        "login.html",
        user=await session_user(request),
        people=people,
        dev_login=settings.dev_login_enabled,
        oidc=client_for(request) is not None,
        next=safe_next(request.query_params.get("next")) or "",
    )


@router.post("/login/dev")
async def dev_login(request: Request, settings: SettingsDep, engine: EngineDep) -> Response:
    if not settings.dev_login_enabled:
        return login_error(request, settings, "login.dev_disabled", status_code=403)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    who = (form.get("person") or [""])[0]
    target = safe_next((form.get("next") or [""])[0])
    async with engine.connect() as conn:
        sites = [s for (s,) in await conn.execute(select(Site.id))]
        person = (
            await conn.execute(select(Person.id, Person.name, Person.role).where(Person.id == who))
        ).first()
    if who == DEV_ADMIN:
        subject, name, roles = DEV_ADMIN, "Admin (dev)", ["admin"]
    elif person is not None and person.role in ROLES:
        subject, name, roles = person.id, person.name, [person.role]
    else:
        return login_error(request, settings, "login.unknown", status_code=400, next_path=target)
    token = mint_dev_token(
        settings,
        subject,
        roles,
        name=name,
        ttl_s=settings.session_ttl_s,
        # A dev facility manager or technician looks after every site.
        sites=sites if roles[0] in ("facility_manager", "technician") else None,
    )
    user = await verifier_for(request).verify(token)
    response = RedirectResponse(target or home_for(user), status_code=303)
    set_session(response, settings, token)
    return response


@router.get("/login/oidc")
async def oidc_login(request: Request, settings: SettingsDep) -> Response:
    """Starts the code flow: off to the provider, with state and PKCE kept in a cookie."""
    client = client_for(request)
    target = safe_next(request.query_params.get("next"))
    if client is None:
        return login_error(request, settings, "login.oidc_off", status_code=404, next_path=target)
    try:
        url, flow_cookie = await client.start(
            request, target, silent=request.query_params.get("silent") == "1"
        )
    except OidcError as exc:
        log.warning("OIDC sign-in cannot start: %s", exc.detail)
        return login_error(
            request, settings, exc.key, status_code=exc.status_code, next_path=target
        )
    response = RedirectResponse(url, status_code=303)
    # Lax is what lets the cookie come back on the provider's top-level redirect to
    # /login/callback; the path keeps it off every other request.
    response.set_cookie(
        FLOW_COOKIE,
        flow_cookie,
        max_age=FLOW_TTL_S,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
        path=FLOW_COOKIE_PATH,
    )
    return response


async def _signed_in(
    request: Request, settings: CloudSettings, engine: AsyncEngine, token: str
) -> Principal:
    """The user of the provider's token, mapped and provisioned (cloud/claims.py)."""
    try:
        user = await verifier_for(request).verify(token)
    except ClaimsRefusedError as exc:
        # Claims the mapping refuses: the person's to sort out, with the reason shown.
        raise OidcError("login.oidc_claims", str(exc.detail), 403) from None
    except AuthError as exc:
        raise OidcError("login.oidc_invalid", str(exc.detail), 401) from None
    mapping = settings.oidc_claims.for_issuer(user.claims.get("iss"))
    try:
        identity = map_claims(user.claims, mapping)
        async with engine.connect() as conn:
            await provision(conn, identity, mapping, str(user.claims.get("iss")))
    except ClaimRefused as exc:
        raise OidcError("login.oidc_claims", exc.reason, 403) from None
    forget(request, user.subject)
    return user


class _SilentRefused(Exception):
    """A silent renewal the provider could not answer without a page."""


@router.get("/login/callback", name="oidc_callback")
async def oidc_callback(request: Request, settings: SettingsDep, engine: EngineDep) -> Response:
    """Back from the provider: check state, redeem the code, verify the token, sign in."""
    client = client_for(request)
    if client is None:
        return login_error(request, settings, "login.oidc_off", status_code=404)
    params = request.query_params
    next_path: str | None = None
    response: Response
    try:
        flow = client.unseal(request.cookies.get(FLOW_COOKIE))
        client.check_state(flow, params.get("state"))
        next_path = safe_next(flow.next)
        if params.get("error") and flow.silent:
            # The provider has no session to renew from: the ordinary login page.
            raise _SilentRefused()
        if params.get("error"):
            # access_denied (the user said no, or is not allowed this app) and the like.
            raise OidcError(
                "login.oidc_denied",
                f"provider said {params.get('error')}: {params.get('error_description', '')}",
                403,
            )
        code = params.get("code")
        if not code:
            raise OidcError("login.oidc_state", "the provider sent no code")
        token = await client.exchange(flow, code)
        user = await _signed_in(request, settings, engine, token)
    except _SilentRefused:
        target = f"/login?{urlencode({'next': next_path})}" if next_path else "/login"
        response = RedirectResponse(target, status_code=303)
    except OidcError as exc:
        log.warning("OIDC sign-in refused: %s", exc.detail)
        response = login_error(
            request,
            settings,
            exc.key,
            status_code=exc.status_code,
            next_path=next_path,
            # A claim refusal is the person's own business and tells them what to ask for.
            detail=exc.detail if exc.key == "login.oidc_claims" else None,
        )
    else:
        response = RedirectResponse(next_path or home_for(user), status_code=303)
        set_session(response, settings, token, user)
        remember(response, settings, user)
    # One flow, one use: a replayed callback finds no cookie.
    response.delete_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    forget_renewal(response)
    return response


@router.post("/logout/everywhere")
async def logout_everywhere(request: Request, engine: EngineDep) -> Response:
    """Signs the person out here and on every other device (cloud/people/sessions.py)."""
    user = await session_user(request)
    if user is not None:
        try:
            async with engine.connect() as conn:
                await sign_out_everywhere(conn, user.subject)
        except NotFound:
            pass  # a session without a person record (dev admin): this cookie is all there is
        forget(request, user.subject)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    forget_renewal(response)
    return response
