"""Events and state messages of one flush, applied with a few statements instead of a few each.

The whole run of consecutive events is first inserted into `events` with one
multi-row `INSERT ... ON CONFLICT (message_id) DO NOTHING RETURNING message_id`
(in chunks, under the drivers' parameter limits): the database, not memory,
says which are new, so a replay is still a no-op. Only the new ones take effect,
in arrival order (door decisions also go to the access log, their node's audit
chain checked: cloud/access/chain.py). Effects that do not read what they write are queued and sent
as one executemany per kind (node last_seen, desk check-in/out state, desk unit
status), each in arrival order, so the desk's `last_change_at` guard decides
between events of one flush exactly as it did one by one. Bookings are moved per
event (they read bookings an earlier event of the flush may have changed), with
the people named and the desks holding a check-in read once per flush. A state
message is a barrier: everything queued before it is written first. Boardings
and pool-car uses of vehicles go, in arrival order, to cloud/transport/rides.py
once the desk writes are done (they touch seats and car bookings, never desks),
through the `RideApplier` the app hands in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Update

from cloud.access import chain as access_chain
from cloud.bookings import checkins
from cloud.db.tables import DESKS, EVENTS
from cloud.db.timestamps import utc
from cloud.ingest.bindings import Refusal
from cloud.ingest.items import ApplyResult, Envelope, RideApplier, RideEvent
from cloud.integrations.events import record_events
from ruang import contract

# 8 columns a row: far below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
ROWS_PER_INSERT = 500

# Events can arrive late (queued while the cloud was away): never let an older
# check-in/out overwrite a newer one. Parameters are prefixed: a bind parameter
# may not share a column's name in an UPDATE.
_DESK_STATE: Update = (
    update(DESKS)
    .where(
        DESKS.c.id == bindparam("p_desk"),
        or_(DESKS.c.last_change_at.is_(None), DESKS.c.last_change_at <= bindparam("p_ts")),
    )
    .values(
        state=bindparam("p_state"),
        occupant_badge=bindparam("p_badge"),
        checked_in_at=bindparam("p_in"),
        last_change_at=bindparam("p_ts"),
    )
)
# A unit's hello leaves out what it does not know: keep the stored value then.
_DESK_UNIT: Update = (
    update(DESKS)
    .where(DESKS.c.id == bindparam("p_desk"))
    .values(
        unit_online=bindparam("p_online"),
        unit_firmware=func.coalesce(bindparam("p_firmware"), DESKS.c.unit_firmware),
        unit=func.coalesce(bindparam("p_unit"), DESKS.c.unit),
    )
)


@dataclass
class _Queued:
    """Writes that need no answer, sent together (each list in arrival order)."""

    seen: dict[str, datetime] = field(default_factory=dict)
    desk_state: list[dict[str, Any]] = field(default_factory=list)
    desk_unit: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Prepared:
    env: Envelope
    kind: str
    refusal: Refusal | None
    first: bool  # not a repeat of a message earlier in the same run


class EventWrites:
    """Applies runs of consecutive events and state messages (see the module docstring)."""

    def __init__(
        self,
        insert: Callable[[Table], Any],
        node_seen: Any,
        refusal: Callable[[AsyncConnection, contract.Message], Awaitable[Refusal | None]],
        state: Callable[
            [AsyncConnection, contract.NodeState, datetime, ApplyResult], Awaitable[None]
        ],
        rides: RideApplier | None = None,
    ) -> None:
        self._insert_events = (
            insert(EVENTS)
            .on_conflict_do_nothing(index_elements=[EVENTS.c.message_id])
            .returning(EVENTS.c.message_id)
            .execution_options(insertmanyvalues_page_size=ROWS_PER_INSERT)
        )
        self._node_seen = node_seen
        self._rides = rides
        self._refusal = refusal
        self._state = state

    async def apply(
        self, conn: AsyncConnection, envs: Sequence[Envelope], result: ApplyResult
    ) -> None:
        prepared = await self._prepare(conn, envs)
        new = await self._insert_rows(conn, prepared)
        effective = [
            p for p in prepared if p.first and p.env.message.id in new and p.refusal is None
        ]
        people = await checkins.people_for(
            conn, [p.env.message for p in effective if isinstance(p.env.message, contract.CheckIn)]
        )
        checked_in = await checkins.desks_checked_in(
            conn,
            [p.env.message.desk for p in effective if isinstance(p.env.message, contract.CheckOut)],
        )
        queued = _Queued()
        rides: list[RideEvent] = []
        for p in prepared:
            msg = p.env.message
            if not p.first or msg.id not in new:
                result.duplicates += 1
            elif p.refusal is not None:
                result.refuse(msg.node, p.kind, p.refusal)
            else:
                result.applied += 1
                now = utc(p.env.received_at)
                if isinstance(msg, contract.NodeState):
                    await self._write(conn, queued)
                    queued = _Queued()
                    await self._state(conn, msg, now, result)
                else:
                    queued.seen[msg.node] = max(now, queued.seen.get(msg.node, now))
                    if isinstance(msg, contract.Boarding | contract.PoolCarUse):
                        rides.append(msg)
                    else:
                        await self._desk(conn, msg, now, queued, people, checked_in, result)
        await self._write(conn, queued)
        if self._rides is not None:
            await self._rides.apply(conn, rides, result.transport)
        else:  # an ingestion without the transport domain keeps them in `events` only
            for msg in rides:
                key = f"{contract.kind_of(msg)}.not_applied"
                result.transport[key] = result.transport.get(key, 0) + 1
        # Door decisions: into the access log, and their node's audit chain checked.
        decisions = [
            (p.env.message, p.env.received_at)
            for p in effective
            if isinstance(p.env.message, contract.AccessDecision)
        ]
        if decisions:
            await access_chain.record(conn, decisions, utc(max(r for _, r in decisions)))
            # Same transaction as the access log: no badge, no person (cloud/integrations).
            await record_events(conn, "access.decision", [
                {"message_id": d.id, "node": d.node, "door": d.door, "granted": d.granted,
                 "reason": d.reason, "decided_at": utc(d.ts)}
                for d, _ in decisions
            ])  # fmt: skip

    async def _prepare(self, conn: AsyncConnection, envs: Sequence[Envelope]) -> list[_Prepared]:
        out: list[_Prepared] = []
        ids: set[str] = set()
        for env in envs:
            msg = env.message
            if isinstance(msg, contract.NodeState):
                kind, refusal = ("birth" if msg.online else "death"), None
            else:
                kind, refusal = env.parsed.kind, await self._refusal(conn, msg)
            out.append(_Prepared(env, kind, refusal, msg.id not in ids))
            ids.add(msg.id)
        return out

    async def _insert_rows(self, conn: AsyncConnection, prepared: list[_Prepared]) -> set[str]:
        """Inserts every first occurrence; the message ids that were not there yet."""
        rows = [_row(p) for p in prepared if p.first]
        if not rows:
            return set()
        # An INSERT with RETURNING and a list of rows is sent by SQLAlchemy as
        # multi-row INSERT ... VALUES (...), (...) ... statements ("insertmanyvalues"),
        # ROWS_PER_INSERT rows each, from one compiled (and cached) statement.
        return {str(m) for m in await conn.scalars(self._insert_events, rows)}

    async def _desk(
        self,
        conn: AsyncConnection,
        msg: contract.Message,
        now: datetime,
        queued: _Queued,
        people: dict[str, str | None],
        checked_in: set[str],
        result: ApplyResult,
    ) -> None:
        if isinstance(msg, contract.CheckIn):
            ts = utc(msg.ts)
            queued.desk_state.append(
                {"p_desk": msg.desk, "p_ts": ts, "p_state": "occupied"}
                | {"p_badge": msg.badge, "p_in": ts}
            )
            if await checkins.apply_checkin(conn, msg, now, people[msg.id]):
                result.booking_nodes.add(msg.node)
                checked_in.add(msg.desk)  # a later check-out may now find a booking
        elif isinstance(msg, contract.CheckOut):
            queued.desk_state.append(
                {"p_desk": msg.desk, "p_ts": utc(msg.ts), "p_state": "free"}
                | {"p_badge": None, "p_in": None}
            )
            # Without a checked-in booking on the desk there is nothing to complete.
            if msg.desk in checked_in and await checkins.apply_checkout(conn, msg, now):
                result.booking_nodes.add(msg.node)
        elif isinstance(msg, contract.UnitStatus):
            queued.desk_unit.append(
                {"p_desk": msg.desk, "p_online": msg.online}
                | {"p_firmware": msg.firmware, "p_unit": msg.unit}
            )

    async def _write(self, conn: AsyncConnection, queued: _Queued) -> None:
        if queued.seen:
            await conn.execute(
                self._node_seen,
                [{"id": node, "online": True, "last_seen": at} for node, at in queued.seen.items()],
            )
        if queued.desk_state:
            await conn.execute(_DESK_STATE, queued.desk_state)
        if queued.desk_unit:
            await conn.execute(_DESK_UNIT, queued.desk_unit)


def _row(p: _Prepared) -> dict[str, Any]:
    """The `events` row of a message; a refused one keeps only what an audit needs.

    A refused event has no desk column (per-desk history must not show it) and
    no badge (a forged tap's badge is nobody's business).
    """
    msg, env = p.env.message, p.env
    if p.refusal is not None:
        return {
            "message_id": msg.id,
            "node": msg.node,
            "desk": None,
            "kind": "refused",
            "ts": utc(msg.ts),
            "received_at": utc(env.received_at),
            "badge": None,
            "payload": {
                "kind": p.kind,
                "reason": p.refusal.category,
                "resource": p.refusal.resource,
            },
        }
    return {
        "message_id": msg.id,
        "node": msg.node,
        "desk": getattr(msg, "desk", None),
        "kind": p.kind,
        "ts": utc(msg.ts),
        "received_at": utc(env.received_at),
        "badge": getattr(msg, "badge", None),
        "payload": msg.model_dump(mode="json"),
    }
