"""Helpers of the live transport tests: vehicles in the database, positions from the
shuttle simulator's model as contract messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.tables import TRANSPORT_VEHICLES
from ruang import contract
from simulators.shuttle import ShuttleRun


async def add_vehicle(
    engine: AsyncEngine, vehicle: str, node: str | None, *, kind: str = "shuttle"
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            TRANSPORT_VEHICLES.insert().values(
                id=vehicle,
                kind=kind,
                label=f"Shuttle {vehicle}",
                capacity=30,
                seats=20,
                wheelchair_accessible=True,
                node_id=node,
                state="in_service",
                state_changed_at=datetime.now(UTC),
                created_at=datetime.now(UTC),
            )
        )


def positions(
    run: ShuttleRun, node: str, vehicle: str, every_s: float = 5.0, until: float | None = None
) -> Iterator[contract.Position]:
    t = run.t0
    end = run.end + 60 if until is None else until
    while t <= end:
        s = run.sample(t)
        if s.fix:
            yield contract.Position(
                node=node,
                vehicle=vehicle,
                ts=t,
                lat=s.lat,
                lon=s.lon,
                speed_kmh=s.speed_kmh,
                heading_deg=s.course_deg % 360,
                fix_quality=1,
                satellites=9,
                hdop=0.9,
            )
        t += every_s
