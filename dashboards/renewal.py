"""Silent renewal of a dashboard session that came from the OIDC provider.

The session cookie lives no longer than the provider's access token, which a
deployment keeps short (minutes). So that people are not sent to the login page
each time it lapses, a successful OIDC sign-in also leaves a small HttpOnly cookie,
`ruang_renew`, scoped to `/login` and living `session_ttl_s` (the longest a
session may be renewed). When a lapsed browser lands on `/login`, that cookie
sends it straight back through the code flow with `prompt=none`: the provider
answers at once from its own session (no page, no password), or with
`login_required`, and then the usual login page shows.

It is only a hint: it names the person and when their token was issued, and
renewal is not tried for a person who signed out everywhere or was deactivated
since (the same check as every request, cloud/people/sessions.py), so those
sessions stay ended even while the provider's own session is alive. A forged
cookie buys nothing but a `prompt=none` round trip to the provider.
"""

from __future__ import annotations

import base64
import json

from fastapi import Request, Response

from cloud.people.auth import Principal, guard_for
from cloud.people.sessions import SessionEnded
from cloud.settings import CloudSettings

RENEW_COOKIE = "ruang_renew"
RENEW_COOKIE_PATH = "/login"


def remember(response: Response, settings: CloudSettings, user: Principal) -> None:
    """Let this browser renew the session silently for up to session_ttl_s."""
    hint = {"sub": user.subject, "iat": user.claims.get("iat")}
    value = base64.urlsafe_b64encode(json.dumps(hint).encode()).rstrip(b"=").decode()
    response.set_cookie(
        RENEW_COOKIE,
        value,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
        path=RENEW_COOKIE_PATH,
    )


def forget_renewal(response: Response) -> None:
    response.delete_cookie(RENEW_COOKIE, path=RENEW_COOKIE_PATH)


async def renewable(request: Request) -> bool:
    """Whether this browser's lapsed session may be renewed without a page."""
    value = request.cookies.get(RENEW_COOKIE)
    if not value:
        return False
    try:
        hint = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return False
    if not isinstance(hint, dict) or not isinstance(hint.get("sub"), str):
        return False
    guard = guard_for(request)
    if guard is not None:
        try:
            await guard.check(hint["sub"], hint.get("iat"))
        except SessionEnded:
            return False
    return True
