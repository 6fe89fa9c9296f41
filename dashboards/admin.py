"""The admin console pages (/admin/<section>): people, badges, door access, enrolment, node
configuration, webhooks and the audit log, each for the roles whose API it drives.

Each section is a shell like the other pages; its data and every change go through
the cloud API with the session cookie, which checks the same roles and sites again
and audits every change (cloud/admin/audit.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboards.web import page_user, render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Section:
    slug: str
    roles: tuple[str, ...]


# The roles match the API the section calls (cloud/api/__init__.py): a role that the API
# refuses gets no page either. Technicians reach no section with names or badge ids.
SECTIONS = (
    Section("people", ("facility_manager", "admin")),
    Section("badges", ("facility_manager", "admin")),
    Section("access", ("security", "admin")),
    Section("enrolment", ("technician", "admin")),
    Section("nodes", ("technician", "facility_manager", "admin")),
    Section("webhooks", ("admin",)),
    Section("audit", ("security", "admin")),
)
BY_SLUG = {s.slug: s for s in SECTIONS}
CONSOLE_ROLES = tuple(sorted({r for s in SECTIONS for r in s.roles}))


@router.get("/admin")
async def console(request: Request) -> Response:
    user = await page_user(request, CONSOLE_ROLES)
    first = next(s for s in SECTIONS if user.has(*s.roles))
    return RedirectResponse(f"/admin/{first.slug}", status_code=303)


@router.get("/admin/{slug}", response_class=HTMLResponse)
async def section(slug: str, request: Request) -> Response:
    chosen = BY_SLUG.get(slug)
    if chosen is None:
        return HTMLResponse("Not found", status_code=404)
    user = await page_user(request, chosen.roles)
    tabs = [s.slug for s in SECTIONS if user.has(*s.roles)]
    return render(
        request,
        "admin.html",
        user=user,
        section=slug,
        tabs=tabs,
        page_data={"view": "admin", "section": slug, "node": request.query_params.get("node")},
    )
