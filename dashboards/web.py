"""Rendering of page shells and the server-side role check every page goes through.

A page is only rendered for a signed-in user holding one of its roles: without a
session the browser is sent to the sign-in page (and back afterwards), with the
wrong role it gets a 403 page. Hiding a link is never the protection; the data
behind every page is also guarded by the API's own role checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from cloud.people.auth import CSRF_HEADER, Principal, session_user
from dashboards import TEMPLATES_DIR
from dashboards.i18n import LANG_COOKIE, LANGUAGES, Translator, pick_language

templates = Jinja2Templates(directory=TEMPLATES_DIR)

MANAGERS = ("facility_manager", "admin")
FLEET = ("technician", "facility_manager", "admin")
MAP = ("facility_manager", "admin", "technician")
SELF_SERVICE = ("asn", "guest", "facility_manager", "admin")
# The reception desk of a site (docs/visitors.md): today's visitors by name, check-in/out.
RECEPTION = ("reception", "admin")
# Office transport: the dispatcher's live map and the operator's figures.
DISPATCH = ("dispatcher", "facility_manager", "admin")
RIDERS = ("asn", "guest", "facility_manager", "admin", "dispatcher")
# Any section of the admin console (dashboards/admin.py SECTIONS decides which).
ADMIN_CONSOLE = ("facility_manager", "technician", "security", "admin")


@dataclass(frozen=True)
class NavItem:
    path: str
    label_key: str
    roles: tuple[str, ...] | None  # None: everyone, signed in or not


NAV = (
    NavItem("/map", "nav.map", MAP),
    NavItem("/analytics", "nav.analytics", MANAGERS),
    NavItem("/fleet", "nav.fleet", FLEET),
    NavItem("/me", "nav.me", SELF_SERVICE),
    NavItem("/reception", "nav.reception", RECEPTION),
    NavItem("/transport/me", "nav.my_shuttle", RIDERS),
    NavItem("/transport/dispatch", "nav.dispatch", DISPATCH),
    NavItem("/transport/analytics", "nav.transport_analytics", DISPATCH),
    NavItem("/admin", "nav.admin", ADMIN_CONSOLE),
    NavItem("/kiosk", "nav.kiosk", None),
)


def home_for(user: Principal) -> str:
    """Where a user lands after signing in: the first view their roles open."""
    if user.has(*MANAGERS):
        return "/map"
    if user.has("technician"):
        return "/fleet"
    if user.has("reception"):
        return "/reception"
    if user.has("dispatcher"):
        return "/transport/dispatch"
    if user.has("security"):
        return "/admin/access"
    return "/me"


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageForbidden(Exception):
    def __init__(self, user: Principal, roles: tuple[str, ...]) -> None:
        self.user, self.roles = user, roles


async def page_user(request: Request, roles: tuple[str, ...]) -> Principal:
    """The signed-in user if they hold one of `roles`; otherwise login or 403."""
    user = await session_user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    if not user.has(*roles):
        raise PageForbidden(user, roles)
    return user


def render(
    request: Request,
    template: str,
    *,
    user: Principal | None,
    status_code: int = 200,
    page_data: dict[str, Any] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page shell with the language, navigation and the JS strings of that language."""
    lang = pick_language(request)
    t = Translator(lang)
    nav = [
        item for item in NAV if item.roles is None or (user is not None and user.has(*item.roles))
    ]
    data = {"lang": lang, "csrfHeader": CSRF_HEADER, "user": _user_json(user), **(page_data or {})}
    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "lang": lang,
            "other_lang": "en" if lang == "id" else "id",
            "user": user,
            "nav": nav,
            "path": request.url.path,
            "strings_json": script_json(t.strings),
            "page_json": script_json(data),
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in LANGUAGES:
        # Remember an explicit switch so the next page keeps the language.
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    # Pages hold personal data for the signed-in user: never cache them in shared caches.
    response.headers["Cache-Control"] = "no-store"
    return response


def script_json(value: Any) -> str:
    """JSON safe inside <script type="application/json">: no `</script>` can close it early."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _user_json(user: Principal | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.subject,
        "name": user.name,
        "roles": sorted(user.roles),
        "sites": sorted(user.sites),
    }


def install_page_errors(app: FastAPI) -> None:
    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='')}", status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageForbidden)
        return render(
            request,
            "forbidden.html",
            user=exc.user,
            status_code=403,
            needed=exc.roles,
            home=home_for(exc.user),
        )

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageForbidden, forbidden)
