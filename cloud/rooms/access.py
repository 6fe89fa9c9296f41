"""Who may book and change a room booking: the organiser, or a manager of the room's site.

Built on the site scoping of cloud/people/access.py. A booking made at a panel has
no organiser; only managers of the room's site may change it from the API.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.errors import Forbidden, NotFound
from cloud.people import access
from cloud.people.auth import Principal
from cloud.rooms.reads import room_sites

ORGANISER_ROLES = ("asn", "facility_manager", "admin")


async def ensure_may_act_for(
    conn: AsyncConnection, user: Principal, person_id: str | None, room_id: str
) -> None:
    """403 unless `user` may book or change `person_id`'s booking of `room_id`."""
    sites = await room_sites(conn, [room_id])
    if room_id not in sites:
        raise NotFound(f"room {room_id!r} is unknown", title="Room not found")
    if person_id is not None and person_id == user.subject and user.has(*ORGANISER_ROLES):
        return
    if access.manages(user, sites[room_id]):
        return
    raise Forbidden(
        "You can only book and change your own room bookings; facility managers can act "
        "for people in the sites they manage.",
        title="Not your booking",
    )


async def ensure_sees_room(conn: AsyncConnection, user: Principal, room_id: str) -> None:
    """Operators and managers see rooms of their sites only; others see every room."""
    if user.is_admin or not user.has(*access.OPERATOR_ROLES):
        return
    scope = access.site_scope(user, access.OPERATOR_ROLES)
    sites = await room_sites(conn, [room_id])
    if room_id not in sites or not access.in_scope(scope, [sites[room_id]]):
        raise NotFound(f"room {room_id!r} is unknown", title="Room not found")
