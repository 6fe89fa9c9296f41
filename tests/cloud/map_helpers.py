"""Shared set-up for the floor map, kiosk and QR tests: desks put in each map state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.models import Booking, Desk
from cloud.settings import CloudSettings
from tests.helpers import auth_headers

DESKS = cast(Table, Desk.__table__)
BOOKINGS = cast(Table, Booking.__table__)


def now_slot(hours: float = 2) -> tuple[str, str]:
    """A slot that covers now (started a minute ago, inside the check-in grace)."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    return start.isoformat(), (start + timedelta(hours=hours)).isoformat()


async def book_now(http: httpx.AsyncClient, desk: str, person: str) -> dict[str, Any]:
    start, end = now_slot()
    r = await http.post(
        "/api/v1/bookings",
        json={"desk_id": desk, "person_id": person, "starts_at": start, "ends_at": end},
    )
    assert r.status_code == 201, r.text
    return cast(dict[str, Any], r.json())


async def set_desk(engine: AsyncEngine, desk: str, **values: Any) -> None:
    """Live desk columns (presence, unit status) as ingestion would have written them."""
    async with engine.begin() as conn:
        await conn.execute(update(DESKS).where(DESKS.c.id == desk).values(**values))


async def mark_checked_in(engine: AsyncEngine, booking_id: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(BOOKINGS)
            .where(BOOKINGS.c.id == booking_id)
            .values(status="checked_in", checked_in_at=datetime.now(UTC))
        )


async def seed_states(http: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """On floor A1-L1 (sample layout + booking_helpers.ROSTER), one desk per map state:

    L1-D01 booked (Citra), L1-D02 checked_in (Tamu, present), L1-D04 away (Budi,
    absent), L1-D05 occupied (present, no booking), L1-D06 unavailable (unit
    offline), L1-D24 unavailable (mode); the other 18 free.
    """
    await book_now(http, "L1-D01", "p-citra")
    tamu = await book_now(http, "L1-D02", "p-tamu")
    await mark_checked_in(engine, tamu["id"])
    await set_desk(engine, "L1-D02", present=True)
    budi = await book_now(http, "L1-D04", "p-budi")
    await mark_checked_in(engine, budi["id"])
    await set_desk(engine, "L1-D04", present=False)
    await set_desk(engine, "L1-D05", present=True)
    await set_desk(engine, "L1-D06", unit_online=False)


def as_role(
    settings: CloudSettings, role: str, subject: str = "someone", sites: tuple[str, ...] = ()
) -> dict[str, str]:
    return auth_headers(settings, subject=subject, roles=(role,), sites=sites)
