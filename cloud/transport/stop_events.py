"""Writing detected stop arrivals/departures to `transport_stop_events` (on-time performance).

The live service (cloud/transport/live.py) calls this with what its trackers
detected from positions; the demo's transport history (launch/demo_fleet.py) writes
past days through the same function, so both rows look alike.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.tables import TRANSPORT_STOP_EVENTS as STOP_EVENTS
from cloud.transport.tracking import StopEvent


def _utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


async def persist_stop_events(engine: AsyncEngine, events: list[tuple[str, StopEvent]]) -> None:
    """Upserts (vehicle id, stop event) pairs: the latest detection of a trip stop wins."""
    now = dt.datetime.now(dt.UTC)
    latest: dict[tuple[str, str, int], dict[str, object]] = {}
    for vid, e in events:
        latest[(e.trip_id, e.service_date, e.stop_sequence)] = {
            "trip_id": e.trip_id,
            "service_date": e.service_date,
            "stop_sequence": e.stop_sequence,
            "stop_id": e.stop_id,
            "route_id": e.route_id,
            "vehicle_id": vid,
            "arrival_at": _utc(e.arrival),
            "departure_at": _utc(e.departure),
            "scheduled_arrival_at": _utc(e.scheduled_arrival),
            "scheduled_departure_at": _utc(e.scheduled_departure),
            "stopped": e.stopped,
            "inferred": e.inferred,
            "updated_at": now,
        }
    async with engine.begin() as conn:
        make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = make(STOP_EVENTS).values(list(latest.values()))
        update = {
            c: stmt.excluded[c]
            for c in (
                "vehicle_id",
                "arrival_at",
                "departure_at",
                "stopped",
                "inferred",
                "updated_at",
            )
        }
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["trip_id", "service_date", "stop_sequence"], set_=update
            )
        )
