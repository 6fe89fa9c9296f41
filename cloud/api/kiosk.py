"""Public routes for the lobby kiosk: desk availability per floor, without signing in.

Nothing here may identify a person: counts only (see cloud/buildings/kiosk.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api_types import Problem
from cloud.buildings import kiosk
from cloud.buildings.schemas import KioskAvailability
from cloud.deps import DbDep, TransportLiveDep

router = APIRouter(tags=["kiosk"])


@router.get(
    "/public/availability",
    response_model=KioskAvailability,
    responses={404: {"model": Problem, "description": "no such site"}},
)
async def public_availability(
    conn: DbDep,
    live: TransportLiveDep,
    site: Annotated[str | None, Query(description="site id; all sites when omitted")] = None,
) -> KioskAvailability:
    return await kiosk.kiosk_availability(conn, site, live=live)
