"""Who may reserve, cancel, book, decide and see what, for seats and pool cars.

- Anyone signed in acts for themselves (the token's subject is their person id).
- A facility manager acts for people whose home site they manage, and sees the
  pool cars (and their bookings) whose home site they manage.
- An approver (token role `approver`) sees and decides the car bookings of the
  people of their own agency (their roster record's agency).
- Admins: everything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import CAR_BOOKINGS, PEOPLE
from cloud.db.tables import TRANSPORT_VEHICLES as VEHICLES
from cloud.errors import Forbidden
from cloud.people import access
from cloud.people.auth import Principal


async def may_act_for(conn: AsyncConnection, user: Principal, person_id: str) -> bool:
    if person_id == user.subject or user.is_admin:
        return True
    site = (await access.person_sites(conn, [person_id])).get(person_id)
    return site is not None and access.manages(user, site)


async def ensure_may_act_for(conn: AsyncConnection, user: Principal, person_id: str) -> None:
    if not await may_act_for(conn, user, person_id):
        raise Forbidden(
            "You can only reserve and book for yourself; facility managers can act for "
            "people of the sites they manage.",
            title="Not yours",
        )


async def agency_of(conn: AsyncConnection, person_id: str) -> str | None:
    agency: str | None = await conn.scalar(select(PEOPLE.c.agency).where(PEOPLE.c.id == person_id))
    return agency


async def visible_car_bookings(conn: AsyncConnection, user: Principal) -> ColumnElement[Any] | None:
    """The SQL condition for the car bookings `user` sees; None: all of them."""
    if user.is_admin:
        return None
    seen: list[ColumnElement[Any]] = [CAR_BOOKINGS.c.person_id == user.subject]
    if user.has("approver"):
        agency = await agency_of(conn, user.subject)
        if agency is not None:
            seen.append(CAR_BOOKINGS.c.agency == agency)
    scope = access.site_scope(user, access.MANAGER_ROLES)
    if scope:
        cars = select(VEHICLES.c.id).where(VEHICLES.c.site_id.in_(sorted(scope)))
        seen.append(CAR_BOOKINGS.c.vehicle_id.in_(cars))
    return or_(false(), *seen)
