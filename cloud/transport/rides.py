"""Applies what vehicles' nodes decided at their doors: `boarding` and `poolcar` events.

Called by the ingestion (cloud/ingest/apply_events.py) inside its transaction,
with the events of one flush that are new (the `events` table's UNIQUE message id
already dropped replays) and that their node may speak for (the vehicle is bound
to it, cloud/ingest/bindings.py), in arrival order:

- every event becomes one row, keyed by its message id (`transport_boardings`,
  `transport_car_uses`; INSERT ... ON CONFLICT DO NOTHING, so even a replay that
  got past `events` counts once), with the badge mapped to its holder and never
  stored raw (docs/privacy.md);
- an allowed boarding marks the rider boarded on the trip instance through the
  seat service (`mark_boarded`: the reservation used, or a walk-on counted);
- a pick-up / return moves the pool-car booking (`record_pickup` /
  `record_return`, which writes the trip log);
- a vehicle the cloud does not know, a trip it does not run, a badge of nobody:
  recorded with that outcome and counted (`ApplyResult.transport`), never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import BADGES, TRANSPORT_BOARDINGS, TRANSPORT_CAR_USES, TRANSPORT_VEHICLES
from cloud.db.timestamps import utc
from cloud.integrations.events import record_event
from cloud.transport import schedule
from cloud.transport.poolcars import record_pickup, record_return
from cloud.transport.reservations import mark_boarded
from cloud.transport.seat_facts import DEFAULT_RULE, CapacityRule
from ruang import contract

RideEvent = contract.Boarding | contract.PoolCarUse


def _as_id(value: str | None) -> int | None:
    """Cloud reservation and booking ids are integers; the snapshot carries them as text."""
    return int(value) if value is not None and value.isdigit() and len(value) < 18 else None


async def holders(conn: AsyncConnection, badges: set[str]) -> dict[str, str]:
    """Badge reference (as the edge names it) -> person id, for active badges."""
    if not badges:
        return {}
    nfc = {b for b in badges if not b.startswith("ble:")}
    ble = {b[4:] for b in badges if b.startswith("ble:")}
    rows = await conn.execute(
        select(BADGES.c.uid, BADGES.c.kind, BADGES.c.person_id).where(
            BADGES.c.status == "active",
            or_(
                func.upper(BADGES.c.uid).in_(sorted(nfc)),
                BADGES.c.uid.in_(sorted(ble | {f"ble:{b}" for b in ble})),
            ),
        )
    )
    out: dict[str, str] = {}
    for uid, kind, person in rows:
        if kind == "ble":
            out[uid if uid.startswith("ble:") else f"ble:{uid}"] = person
        else:
            out[uid.upper()] = person
    return out


class RideWrites:
    """Applies the ride events of one flush (see the module docstring)."""

    def __init__(self, dialect_name: str, capacity: CapacityRule = DEFAULT_RULE) -> None:
        insert: Callable[[Table], Any] = (
            postgresql.insert if dialect_name == "postgresql" else sqlite.insert
        )
        # A trip with no vehicle planned takes its capacity from this rule (cloud settings).
        self._capacity = capacity
        self._boarding = insert(TRANSPORT_BOARDINGS).on_conflict_do_nothing(
            index_elements=[TRANSPORT_BOARDINGS.c.message_id]
        )
        self._car_use = insert(TRANSPORT_CAR_USES).on_conflict_do_nothing(
            index_elements=[TRANSPORT_CAR_USES.c.message_id]
        )

    async def apply(
        self, conn: AsyncConnection, events: Sequence[RideEvent], counts: dict[str, int]
    ) -> None:
        if not events:
            return
        people = await holders(conn, {e.badge for e in events})
        vehicles = set(
            await conn.scalars(
                select(TRANSPORT_VEHICLES.c.id).where(
                    TRANSPORT_VEHICLES.c.id.in_(sorted({e.vehicle for e in events}))
                )
            )
        )
        tz = await schedule.timezone(conn)
        for event in events:
            person = people.get(event.badge)
            known = event.vehicle in vehicles
            if isinstance(event, contract.Boarding):
                outcome = await self._boarded(conn, event, person, known, tz)
                key = f"boarding.{outcome or event.reason}"
            else:
                outcome = await self._car(conn, event, person, known)
                key = f"poolcar.{outcome or event.reason}"
            counts[key] = counts.get(key, 0) + 1

    async def _boarded(
        self,
        conn: AsyncConnection,
        event: contract.Boarding,
        person: str | None,
        known: bool,
        tz: ZoneInfo,
    ) -> str | None:
        ts = utc(event.ts)
        outcome: str | None = None
        if not known:
            outcome = "unknown_vehicle"
        elif event.allowed:
            outcome = await self._seat(conn, event, person, ts)
        await conn.execute(
            self._boarding,
            [{
                "message_id": event.id, "node": event.node, "vehicle_id": event.vehicle,
                "reader": event.reader, "ts": ts, "hour": ts.astimezone(tz).hour,
                "trip_id": event.trip, "service_date": event.service_date,
                "stop_id": event.stop, "allowed": event.allowed, "reason": event.reason,
                "reservation": event.reservation, "person_id": person, "outcome": outcome,
                "lat": event.lat, "lon": event.lon,
            }],
        )  # fmt: skip
        # Same transaction as the boarding row; no badge, person or position.
        await record_event(conn, "transport.boarding", {
            "message_id": event.id, "vehicle_id": event.vehicle, "trip_id": event.trip,
            "service_date": event.service_date, "stop_id": event.stop,
            "allowed": event.allowed, "reason": event.reason, "outcome": outcome,
            "boarded_at": ts,
        })  # fmt: skip
        return outcome

    async def _seat(
        self, conn: AsyncConnection, event: contract.Boarding, person: str | None, ts: datetime
    ) -> str:
        if event.trip is None or event.service_date is None:
            return "no_trip"
        who: str | int | None = _as_id(event.reservation) or person
        if who is None:
            return "unknown_person"
        boarded = await mark_boarded(
            conn, event.trip, event.service_date, who, ts, stop=event.stop, capacity=self._capacity
        )
        return boarded.result

    async def _car(
        self, conn: AsyncConnection, event: contract.PoolCarUse, person: str | None, known: bool
    ) -> str | None:
        ts = utc(event.ts)
        outcome: str | None = None
        booking = _as_id(event.booking)
        if not known:
            outcome = "unknown_vehicle"
        elif event.action != "refused" and booking is None:
            outcome = "unknown_booking"
        elif event.action == "pickup" and booking is not None:
            outcome = await record_pickup(conn, booking, event.vehicle, ts)
        elif event.action == "return" and booking is not None:
            outcome = await record_return(conn, booking, event.vehicle, ts)
        await conn.execute(
            self._car_use,
            [{
                "message_id": event.id, "node": event.node, "vehicle_id": event.vehicle,
                "reader": event.reader, "ts": ts, "action": event.action,
                "reason": event.reason, "booking": event.booking, "person_id": person,
                "outcome": outcome, "lat": event.lat, "lon": event.lon,
            }],
        )  # fmt: skip
        return outcome
