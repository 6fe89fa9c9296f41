"""Shared set-up for the seat and pool-car tests: the sample schedule, people, vehicles, a trip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.buildings.layout import SAMPLE_LAYOUT, apply_layout, load_layout
from cloud.db.tables import TRANSPORT_VEHICLES
from cloud.transport import schedule
from cloud.transport.gtfs_export import sample_zip
from cloud.transport.gtfs_import import import_gtfs

SITE = "ikn-kipp"


@dataclass(frozen=True)
class TripRef:
    trip_id: str
    service_date: str
    stops: tuple[str, ...]
    departures: tuple[float, ...]


async def load_schedule(engine: AsyncEngine) -> None:
    await apply_layout(engine, load_layout(SAMPLE_LAYOUT))
    await import_gtfs(engine, sample_zip())


async def future_trip(engine: AsyncEngine, *, days_ahead: int = 1, last: bool = True) -> TripRef:
    """A trip of the first service day at least `days_ahead` days from today (WITA)."""
    async with engine.connect() as conn:
        tz = await schedule.timezone(conn)
        day: date = datetime.now(UTC).astimezone(tz).date() + timedelta(days=days_ahead)
        for _ in range(30):
            trips = await schedule.trips_on(conn, day)
            if trips:
                trip = trips[-1] if last else trips[0]
                plan = await schedule.trip_plan(conn, trip.trip_id, day)
                assert plan is not None
                return TripRef(
                    trip.trip_id,
                    schedule.gtfs_date(day),
                    tuple(s.stop_id for s in plan.stops),
                    tuple(s.departure for s in plan.stops),
                )
            day += timedelta(days=1)
    raise AssertionError("the sample schedule runs no trip in the next 30 days")


async def add_vehicle(
    engine: AsyncEngine, vehicle_id: str, kind: str, capacity: int, *, site: str = SITE
) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(TRANSPORT_VEHICLES).values(
                id=vehicle_id,
                kind=kind,
                label=vehicle_id,
                capacity=capacity,
                seats=min(capacity, 7) if kind == "poolcar" else min(capacity, 30),
                wheelchair_accessible=False,
                plate="KT 1234 XX" if kind == "poolcar" else None,
                site_id=site if kind == "poolcar" else None,
                state="at_depot",
                state_changed_at=now,
                created_at=now,
            )
        )


async def import_people(
    http: httpx.AsyncClient, ids: list[str], *, agency: str = "Otorita IKN"
) -> None:
    rows = "".join(f"{p},asn,Penumpang {p},{agency},asn,{SITE}\n" for p in ids)
    r = await http.post(
        "/api/v1/people/import",
        content="id,kind,name,agency,role,site_id\n" + rows,
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 200, r.text


def reservation(trip: TripRef, person: str, **extra: object) -> dict[str, object]:
    return {
        "trip_id": trip.trip_id,
        "service_date": trip.service_date,
        "from_stop": trip.stops[0],
        "person_id": person,
        **extra,
    }
