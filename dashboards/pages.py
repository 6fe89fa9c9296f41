"""The dashboard pages: one route per view, each checking its roles before rendering.

The pages are shells; their data comes from the cloud API (with the session
cookie), which enforces the same roles again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.db.models import FEATURES
from cloud.people.auth import ROLES, session_user
from dashboards.i18n import LANG_COOKIE, LANGUAGES
from dashboards.login import safe_next
from dashboards.web import (
    DISPATCH,
    FLEET,
    MANAGERS,
    MAP,
    RECEPTION,
    RIDERS,
    SELF_SERVICE,
    home_for,
    page_user,
    render,
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root(request: Request) -> Response:
    user = await session_user(request)
    return RedirectResponse(home_for(user) if user else "/login", status_code=303)


@router.get("/lang/{code}")
async def switch_language(code: str, request: Request) -> Response:
    target = safe_next(request.query_params.get("next")) or "/"
    response = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/map", response_class=HTMLResponse)
async def floor_map(request: Request) -> Response:
    user = await page_user(request, MAP)
    return render(request, "map.html", user=user, page_data={"view": "map"})


@router.get("/analytics", response_class=HTMLResponse)
async def analytics(request: Request) -> Response:
    user = await page_user(request, MANAGERS)
    return render(request, "analytics.html", user=user, page_data={"view": "analytics"})


@router.get("/fleet", response_class=HTMLResponse)
async def fleet(request: Request) -> Response:
    user = await page_user(request, FLEET)
    return render(request, "fleet.html", user=user, page_data={"view": "fleet"})


@router.get("/fleet/{node_id}", response_class=HTMLResponse)
async def fleet_node(node_id: str, request: Request) -> Response:
    user = await page_user(request, FLEET)
    return render(
        request,
        "node.html",
        user=user,
        node_id=node_id,
        page_data={"view": "node", "node": node_id},
    )


@router.get("/reception", response_class=HTMLResponse)
async def reception(request: Request) -> Response:
    """The reception kiosk: scan or type a visitor's pass, search today's visitors, check out."""
    user = await page_user(request, RECEPTION)
    return render(request, "reception.html", user=user, page_data={"view": "reception"})


@router.get("/me", response_class=HTMLResponse)
async def self_service(request: Request) -> Response:
    user = await page_user(request, SELF_SERVICE)
    # The desk features people can filter by: the same list the availability API accepts.
    return render(
        request, "me.html", user=user, page_data={"view": "me", "features": list(FEATURES)}
    )


@router.get("/checkin/{desk_id}", response_class=HTMLResponse)
async def qr_checkin(desk_id: str, request: Request) -> Response:
    # Anyone signed in may try; the API decides whether this person may sit here.
    user = await page_user(request, ROLES)
    return render(
        request,
        "checkin.html",
        user=user,
        desk_id=desk_id,
        page_data={"view": "checkin", "desk": desk_id, "key": request.query_params.get("k", "")},
    )


@router.get("/kiosk", response_class=HTMLResponse)
async def kiosk(request: Request) -> Response:
    # The lobby screen has no login and shows no personal data (the API it calls is public).
    return render(
        request,
        "kiosk.html",
        user=None,
        kiosk=True,
        page_data={"view": "kiosk", "site": request.query_params.get("site")},
    )


@router.get("/transport/me", response_class=HTMLResponse)
async def my_shuttle(request: Request) -> Response:
    user = await page_user(request, RIDERS)
    return render(request, "transport_me.html", user=user, page_data={"view": "transport_me"})


@router.get("/transport/dispatch", response_class=HTMLResponse)
async def dispatch(request: Request) -> Response:
    user = await page_user(request, DISPATCH)
    return render(
        request, "transport_dispatch.html", user=user, page_data={"view": "transport_dispatch"}
    )


@router.get("/transport/analytics", response_class=HTMLResponse)
async def transport_analytics(request: Request) -> Response:
    user = await page_user(request, DISPATCH)
    return render(
        request, "transport_analytics.html", user=user, page_data={"view": "transport_analytics"}
    )
