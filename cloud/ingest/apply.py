"""Applies contract messages to the SQL state, in arrival order, inside one transaction.

Telemetry arrives as `TelemetryBatch`es already coalesced in memory (latest
presence per desk and per room, last arrival per node) and is written with one
multi-row upsert (or UPDATE) per table; runs of consecutive events and state messages go
through cloud/ingest/apply_events.py: one multi-row INSERT into `events`, whose UNIQUE
message id turns a replay into a no-op, then the new ones' effects in arrival order.

Every message is first checked against what its node is bound to (cloud/ingest/bindings.py).
Desks and rooms are only ever updated here, never created: they come from the layout.
A refused event is recorded once in `events` as kind `refused` (no desk, no badge,
the payload says what and why), so it is acknowledged to the node like any committed
event and a resend is a duplicate; it changes nothing else. Refused telemetry is
dropped and counted. Node and device health go through cloud/ingest/apply_fleet.py;
the data types are in cloud/ingest/items.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, false, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import DESKS, NODES, PRESENCE_CHANGES, ROOMS
from cloud.db.timestamps import utc
from cloud.ingest.apply_events import EventWrites
from cloud.ingest.apply_fleet import FleetWrites
from cloud.ingest.bindings import Bindings, Refusal
from cloud.ingest.items import ApplyResult, Envelope, Item, RideApplier, TelemetryBatch
from cloud.ingest.presence_history import merge_backlog_presence
from cloud.integrations.events import record_event
from cloud.rooms.noshow import record_readings
from cloud.telemetry import lineprotocol
from ruang import contract

__all__ = ["Applier", "ApplyResult", "Envelope", "Item", "TelemetryBatch"]


def _node_event(msg: contract.NodeState, cause: str, now: datetime) -> dict[str, Any]:
    """What integrations hear of a node's birth or death (kinds node.online/node.offline)."""
    return {"node": msg.node, "online": msg.online, "cause": cause, "bdseq": msg.bdseq, "at": now}


class Applier:
    """Builds the dialect-specific upserts once and applies lists of items."""

    def __init__(
        self,
        dialect_name: str,
        *,
        last_seen_resolution_s: float = 5.0,
        health_sample_interval_s: float = 60.0,
        bindings: Bindings | None = None,
        rides: RideApplier | None = None,
    ) -> None:
        self.bindings = bindings or Bindings()
        # Committed values, to skip rows that would not change: most presence
        # samples repeat the previous value, and last_seen only needs to be
        # fresh to within a fraction of the offline timeout.
        self._presence: dict[str, bool] = {}
        self._rooms: dict[str, bool] = {}
        self._seen: dict[str, float] = {}
        self._seen_resolution = last_seen_resolution_s
        insert: Callable[[Table], Any] = (
            postgresql.insert if dialect_name == "postgresql" else sqlite.insert
        )
        self._insert = insert
        self._fleet = FleetWrites(insert, health_sample_interval_s)

        node_ins = insert(NODES)
        # Any message revives a node the sweeper timed out, but not one whose
        # latest state message was a death: only a new birth brings that back.
        died_last = and_(
            NODES.c.last_death_at.is_not(None),
            or_(NODES.c.last_birth_at.is_(None), NODES.c.last_death_at >= NODES.c.last_birth_at),
        )
        self._node_seen = node_ins.on_conflict_do_update(
            index_elements=[NODES.c.id],
            set_={
                "last_seen": node_ins.excluded.last_seen,
                "online": case((died_last, NODES.c.online), else_=true()),
            },
        )
        # Desks come from the layout only: presence updates a known desk, never creates one.
        self._desk_presence = (
            update(DESKS)
            .where(DESKS.c.id == bindparam("desk"))
            .values(
                present=bindparam("present"),
                # Only a change of value moves presence_changed_at.
                presence_changed_at=case(
                    (
                        DESKS.c.present.is_not_distinct_from(bindparam("was_present")),
                        DESKS.c.presence_changed_at,
                    ),
                    else_=bindparam("at"),
                ),
            )
        )
        # Rooms come from the layout only: a reading updates a known room, never creates one.
        self._room_occupied = (
            update(ROOMS)
            .where(ROOMS.c.id == bindparam("room"))
            .values(occupied=bindparam("occupied"), occupied_changed_at=bindparam("at"))
        )
        birth_ins = insert(NODES)
        self._node_birth = birth_ins.on_conflict_do_update(
            index_elements=[NODES.c.id],
            set_={
                name: getattr(birth_ins.excluded, name)
                for name in (
                    "online",
                    "bdseq",
                    "sw_version",
                    "last_seen",
                    "last_birth_at",
                    "devices_declared",
                )
            }
            | {
                # Only older edges leave these out of the birth: keep what health said.
                name: func.coalesce(getattr(birth_ins.excluded, name), getattr(NODES.c, name))
                for name in ("config_version", "outbox_depth")
            },
        )
        death_ins = insert(NODES)
        self._node_death = death_ins.on_conflict_do_update(
            index_elements=[NODES.c.id],
            set_={
                "online": false(),
                "bdseq": death_ins.excluded.bdseq,
                "last_death_at": death_ins.excluded.last_death_at,
            },
        )
        self._events = EventWrites(insert, self._node_seen, self._refusal, self._state, rides)
        # A birth reports the unit serial of the node's own desks (checked before).
        self._desk_birth = (
            update(DESKS)
            .where(DESKS.c.id == bindparam("desk"))
            .values(unit=func.coalesce(bindparam("unit"), DESKS.c.unit))
        )

    async def apply(self, conn: AsyncConnection, items: Sequence[Item]) -> ApplyResult:
        result = ApplyResult()
        await self.bindings.ensure_fresh(conn)
        run: list[Envelope] = []  # consecutive events and state messages, applied together
        for item in items:
            if isinstance(item, TelemetryBatch):
                if run:
                    await self._events.apply(conn, run, result)
                    run = []
                await self._telemetry(conn, item, result)
            else:
                run.append(item)
        if run:
            await self._events.apply(conn, run, result)
        return result

    async def _refusal(self, conn: AsyncConnection, msg: contract.Message) -> Refusal | None:
        refusal = self.bindings.check(msg)
        if refusal is not None and await self.bindings.recheck(conn, [refusal]):
            refusal = self.bindings.check(msg)
        return refusal

    async def _bound_telemetry(
        self, conn: AsyncConnection, batch: TelemetryBatch, result: ApplyResult
    ) -> tuple[
        dict[str, tuple[str, bool, float]],
        dict[str, tuple[bool, float]],
        dict[tuple[str, str], tuple[contract.DeviceHealth, float]],
    ]:
        """The batch's presence, room and device samples its nodes may speak for.

        The batch itself is left as it is: after a failed write it is applied again.
        """
        b = self.bindings

        def split() -> tuple[Any, Any, Any, list[tuple[str, str, Refusal]]]:
            refused: list[tuple[str, str, Refusal]] = []
            presence, rooms, devices = {}, {}, {}
            for desk, sample in batch.presence.items():
                if r := b.desk(sample[0], desk):
                    refused.append((sample[0], "presence", r))
                else:
                    presence[desk] = sample
            for room, (node, occupied, ts, sensor) in batch.rooms.items():
                if r := b.room(node, room, sensor):
                    refused.append((node, "room_presence", r))
                else:
                    rooms[room] = (occupied, ts)
            for key, (health, received) in batch.devices.items():
                if r := b.check(health):
                    refused.append((key[0], "device_health", r))
                else:
                    devices[key] = (health, received)
            return presence, rooms, devices, refused

        presence, rooms, devices, refused = split()
        if refused and await b.recheck(conn, [r for _, _, r in refused]):
            presence, rooms, devices, refused = split()
        for node, kind, refusal in refused:
            result.refuse(node, kind, refusal)
        result.applied += batch.count - len(refused)
        return presence, rooms, devices

    def committed(self, result: ApplyResult) -> None:
        """Remembers what `result`'s transaction wrote (call only after it committed)."""
        self._presence.update(result.presence_written)
        self._rooms.update(result.rooms_written)
        self._seen.update(result.seen_written)
        self._fleet.committed(result)

    def forget_nodes(self, nodes: Sequence[str]) -> None:
        """The database changed these nodes behind our back (e.g. timed out): write them again."""
        for node in nodes:
            self._seen.pop(node, None)

    async def _telemetry(
        self, conn: AsyncConnection, batch: TelemetryBatch, result: ApplyResult
    ) -> None:
        presence, rooms, devices = await self._bound_telemetry(conn, batch, result)
        known_seen, resolution = self._seen, self._seen_resolution
        fresh = {
            node: t
            for node, t in batch.seen.items()
            if t - known_seen.get(node, float("-inf")) >= resolution
        }
        if fresh:
            await conn.execute(
                self._node_seen,
                [{"id": node, "online": True, "last_seen": utc(t)} for node, t in fresh.items()],
            )
            result.seen_written.update(fresh)
        known_presence = self._presence
        changed = {
            desk: sample
            for desk, sample in presence.items()
            if known_presence.get(desk) is not sample[1]
        }
        if changed:
            # Presence history for analytics: only real changes. Desks this
            # process has not written yet (after a restart) are compared with
            # the stored value, so a restart does not record a fake change.
            unknown = [desk for desk in changed if desk not in known_presence]
            stored: dict[str, bool | None] = {}
            if unknown:
                rows = await conn.execute(
                    select(DESKS.c.id, DESKS.c.present).where(DESKS.c.id.in_(unknown))
                )
                stored = {row.id: row.present for row in rows}
            history = [
                {"desk_id": desk, "present": present, "ts": utc(ts)}
                for desk, (_, present, ts) in changed.items()
                if desk in known_presence or stored.get(desk) is not present
            ]
            if history:
                await conn.execute(self._insert(PRESENCE_CHANGES), history)
            await conn.execute(
                self._desk_presence,
                [
                    {"desk": desk, "present": present, "was_present": present, "at": utc(ts)}
                    for desk, (_, present, ts) in changed.items()
                ],
            )
            result.presence_written.update(
                (desk, present) for desk, (_, present, _) in changed.items()
            )
        if batch.backlog_presence:
            await self._backlog_presence(conn, batch, result)
        if rooms:
            await self._room_occupancy(conn, rooms, result)
        if batch.health or devices:
            await self._fleet.write(conn, batch, result, devices)

    async def _backlog_presence(
        self, conn: AsyncConnection, batch: TelemetryBatch, result: ApplyResult
    ) -> None:
        """Presence from outboxes -> presence_changes only (checked like live presence)."""
        b = self.bindings
        refused = [
            (node, desk)
            for desk, samples in batch.backlog_presence.items()
            for node, _, _ in samples
            if b.desk(node, desk)
        ]
        if refused:
            await b.recheck(conn, [r for n, d in refused if (r := b.desk(n, d))])
        samples: dict[str, list[tuple[bool, float]]] = {}
        for desk, desk_samples in batch.backlog_presence.items():
            for node, present, ts in desk_samples:
                if r := b.desk(node, desk):
                    result.refuse(node, "presence", r)
                else:
                    samples.setdefault(desk, []).append((present, ts))
        await merge_backlog_presence(conn, samples)

    async def _room_occupancy(
        self, conn: AsyncConnection, rooms: dict[str, tuple[bool, float]], result: ApplyResult
    ) -> None:
        """Latest room sensor readings -> rooms.occupied, one UPDATE for all changed rooms."""
        known = self._rooms
        candidates = [
            room for room, (occupied, _) in rooms.items() if known.get(room) is not occupied
        ]
        if not candidates:
            return
        # The stored value decides what changed, so occupied_changed_at moves only on a
        # real change (also after a restart).
        stored = {
            row.id: row.occupied
            for row in await conn.execute(
                select(ROOMS.c.id, ROOMS.c.occupied).where(ROOMS.c.id.in_(candidates))
            )
        }
        rows = []
        for room in candidates:
            occupied, ts = rooms[room]
            if room not in stored:  # deleted since the bindings were read
                continue
            result.rooms_written[room] = occupied
            if stored[room] is not occupied:
                rows.append({"room": room, "occupied": occupied, "at": utc(ts)})
                result.rooms_changed.add(room)
        if rows:
            await conn.execute(self._room_occupied, rows)
            # Same transaction: sensed-hours history and room no-show attendance.
            await record_readings(conn, rows)

    async def _state(
        self, conn: AsyncConnection, msg: contract.NodeState, now: datetime, result: ApplyResult
    ) -> None:
        if msg.online:
            # The birth still counts for the node itself; desks it names but is not
            # bound to are left out of it (and counted).
            desks = []
            for info in msg.desks:
                refusal = self.bindings.desk(msg.node, info.desk)
                if refusal is not None and await self.bindings.recheck(conn, [refusal]):
                    refusal = self.bindings.desk(msg.node, info.desk)
                if refusal is None:
                    desks.append(info)
                else:
                    result.refuse(msg.node, "state", refusal)
            await conn.execute(
                self._node_birth,
                [
                    {
                        "id": msg.node,
                        "online": True,
                        "bdseq": msg.bdseq,
                        "sw_version": msg.sw_version,
                        "last_seen": now,
                        "last_birth_at": now,
                        "config_version": msg.config_version,
                        "outbox_depth": msg.outbox_depth,
                        # The birth names desk units only; other devices appear via device_health.
                        "devices_declared": [
                            {"kind": "deskunit", "device": d.desk, "unit": d.unit} for d in desks
                        ],
                    }
                ],
            )
            if desks:
                await conn.execute(
                    self._desk_birth, [{"desk": d.desk, "unit": d.unit} for d in desks]
                )
            await record_event(conn, "node.online", _node_event(msg, "birth", now))
        else:
            current = await conn.scalar(select(NODES.c.bdseq).where(NODES.c.id == msg.node))
            if current is not None and msg.bdseq < current:
                # The will of an older connection, delivered after the node came back.
                result.stale_deaths += 1
                return
            await conn.execute(
                self._node_death,
                [{"id": msg.node, "online": False, "bdseq": msg.bdseq, "last_death_at": now}],
            )
            await record_event(conn, "node.offline", _node_event(msg, "will", now))
        result.lines.append(lineprotocol.node_state(msg.node, msg.online, msg.ts, msg.bdseq))
