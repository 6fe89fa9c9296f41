"""Who may see and change what: the rules behind the API's role checks.

- admin: everything;
- facility_manager: everything in the sites listed in their token;
- asn / guest: only their own bookings (the token's subject is their person id);
- technician: nodes, enrolment and device configuration, not people or bookings.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.auth import Principal
from cloud.models import Building, Desk, Floor
from cloud.problems import ProblemError

_DESK_SITE = (
    select(Desk.id, Building.site_id)
    .join(Floor, Floor.id == Desk.floor_id)
    .join(Building, Building.id == Floor.building_id)
)


async def desk_sites(conn: AsyncConnection, desk_ids: Iterable[str]) -> dict[str, str]:
    """{desk id: site id} for desks placed in the building layout."""
    ids = sorted(set(desk_ids))
    if not ids:
        return {}
    rows = await conn.execute(_DESK_SITE.where(Desk.id.in_(ids)))
    return {desk: site for desk, site in rows}


def manages(user: Principal, site: str | None) -> bool:
    """Admins manage every site; a facility manager the sites in their token."""
    if user.is_admin:
        return True
    return "facility_manager" in user.roles and site is not None and site in user.sites


async def ensure_may_act_for(
    conn: AsyncConnection, user: Principal, person_id: str, desk_id: str
) -> None:
    """Raises 403 unless `user` may book or change a booking of `person_id` at `desk_id`."""
    if person_id == user.subject and user.has("asn", "guest", "facility_manager", "admin"):
        return
    site = (await desk_sites(conn, [desk_id])).get(desk_id)
    if manages(user, site):
        return
    raise ProblemError(
        403,
        "You can only book and change your own bookings; facility managers can act for "
        "people in the sites they manage.",
        title="Not your booking",
    )


def person_filter(user: Principal, requested: str | None) -> str | None:
    """The person a booking listing is limited to: yourself unless you manage sites."""
    if user.is_admin or "facility_manager" in user.roles:
        return requested
    if requested is not None and requested != user.subject:
        raise ProblemError(403, "You can only see your own bookings.", title="Not your bookings")
    return user.subject
