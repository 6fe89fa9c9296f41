"""The site rules that govern a desk at tap time: its time zone, check-in grace and away limit.

Desks reach a site through floor -> building -> site; a desk ingestion created
before any layout named it has no site and gets the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import BUILDINGS, DESKS, FLOORS, SITES
from ruang.site_defaults import DEFAULT_TIMEZONE


@dataclass(frozen=True)
class SiteRules:
    timezone: str = DEFAULT_TIMEZONE
    checkin_grace_min: int = 15
    away_release_min: int = 30

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


DESK_SITE = (
    select(DESKS.c.id, DESKS.c.node_id, SITES.c.timezone, SITES.c.checkin_grace_min,
           SITES.c.away_release_min)
    .select_from(
        DESKS.outerjoin(FLOORS, FLOORS.c.id == DESKS.c.floor_id)
        .outerjoin(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id)
        .outerjoin(SITES, SITES.c.id == BUILDINGS.c.site_id)
    )
)


def rules_of(row: Any) -> SiteRules:
    """The rules of a row with DESK_SITE's site columns (defaults when the desk has no site)."""
    if row.timezone is None:
        return SiteRules()
    return SiteRules(row.timezone, int(row.checkin_grace_min), int(row.away_release_min))


async def desk_rules(conn: AsyncConnection, desk: str) -> SiteRules:
    row = (await conn.execute(DESK_SITE.where(DESKS.c.id == desk))).first()
    return SiteRules() if row is None else rules_of(row)


def end_of_local_day(at: datetime, tz: ZoneInfo) -> datetime:
    """The next local midnight after `at`, as an aware datetime."""
    local = at.astimezone(tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz)
    return midnight
