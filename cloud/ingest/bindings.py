"""What an edge node may speak for: the resources bound to it, checked on every message.

The broker's ACL keeps a node on its own topics, but a payload still names
desks, rooms, doors, vehicles and devices. A node may only name its own:

- desks and rooms come from the layout (`desks.node_id`, `rooms.node_id`, a
  room's node defaulting to its floor's). An id the layout does not know is
  `unknown_resource`; one bound to another node (or, for a room, to no node)
  is `not_bound`. A room that names its sensor refuses readings from another.
- vehicles are bound by the vehicles table (`transport_vehicles.node_id`, one
  node per vehicle): a vehicle listed there may only be named by its node, and
  a node riding in a vehicle may name no other. A vehicle not in the table
  falls back to the config rule below.
- doors, (unlisted) vehicles, BLE zones and devices are not in the layout: the node's
  desired config (`node_configs`, pushed as `commands/config`) binds them, one
  config key per kind (`doors`, `gps`, `ble`, `radars`, `desk_units`). When
  the node's config sets that key, the id must be listed in it. When it does
  not (the node runs its own file config for that kind), the id must not be
  listed under that key in another node's config.

Telemetry that only reaches the time series (heartbeat, badge_presence,
position) is checked on receipt against the copy as it is (`check_cached`), and
so are the series lines of presence, room_presence and device_health, whose
database writes the Applier checks again.

The bindings are read in full (three small queries) and kept in memory: the
ingestion hot path checks each message against dicts. They are read again
when older than `max_age_s` and after `changed()` (the layout or a node config
was written in this process). Before a message is refused, what it names is
read again from the database (`recheck`), so a desk or room just added by
another process is never refused from an old copy; node configs are re-read
for this at most once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import DESKS, NODE_CONFIGS, ROOMS, TRANSPORT_VEHICLES
from ruang import contract

UNKNOWN = "unknown_resource"
NOT_BOUND = "not_bound"


# Bumped by whoever writes the layout or a node config in this process.
_generation = 0


def changed() -> None:
    """The layout or a node config changed: every Bindings reads them again before use."""
    global _generation
    _generation += 1


@dataclass(frozen=True, slots=True)
class Refusal:
    category: str  # UNKNOWN or NOT_BOUND
    resource: str  # e.g. "desk L1-D01", for the log
    source: str = "config"  # where the binding is read from again: desk, room, vehicle, config
    ident: str = ""


def _items(config: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = config.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _ids(entries: Iterable[dict[str, Any]], *fields: str) -> set[str]:
    out: set[str] = set()
    for entry in entries:
        for name in fields:
            value = entry.get(name)
            if isinstance(value, str):
                out.add(value)
                break
    return out


def config_bindings(config: dict[str, Any]) -> dict[str, frozenset[str]]:
    """What a desired config binds, per class ("doors", "vehicles", "device:radar"...).

    Only the keys the config sets are present: an absent key means the node keeps
    its file config for that kind, which the cloud cannot see.
    """
    out: dict[str, frozenset[str]] = {}
    if "doors" in config:
        doors = _ids(_items(config, "doors"), "id")
        out["doors"] = out["device:door"] = frozenset(doors)
    if "gps" in config:
        gps = _items(config, "gps")
        out["vehicles"] = frozenset(_ids(gps, "vehicle", "device"))
        out["device:gps"] = frozenset(_ids(gps, "device"))
    vehicle = config.get("vehicle")
    if isinstance(vehicle, dict) and isinstance(vehicle.get("vehicle"), str):
        # A vehicle node's own vehicle, and its door readers' health (kind "door").
        out["vehicles"] = out.get("vehicles", frozenset()) | {vehicle["vehicle"]}
        readers = _ids(_items(vehicle, "readers"), "id")
        out["device:door"] = out.get("device:door", frozenset()) | readers
    if "radars" in config:
        out["device:radar"] = frozenset(_ids(_items(config, "radars"), "device"))
    if "ble" in config:
        ble = config.get("ble") if isinstance(config.get("ble"), dict) else {}
        assert isinstance(ble, dict)
        scanners = _items(ble, "scanners")
        device_id = ble.get("device_id", "ble")
        out["zones"] = frozenset(_ids(scanners, "zone"))
        out["device:ble_scanner"] = frozenset(
            _ids(scanners, "id") | ({device_id} if isinstance(device_id, str) else set())
        )
        out["device:ble_badge"] = frozenset(_ids(_items(ble, "badges"), "id"))
    return out


class Bindings:
    """An in-memory copy of which node each resource is bound to, and the checks on it."""

    def __init__(
        self,
        *,
        max_age_s: float = 10.0,
        recheck_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age = max_age_s
        self._recheck_interval = recheck_interval_s
        self._clock = clock
        self._loaded_at = self._configs_at = float("-inf")
        self._generation = -1  # never read
        self.desks: dict[str, str] = {}
        self.rooms: dict[str, tuple[str | None, str | None]] = {}  # room -> (node, sensor)
        self.vehicles: dict[str, str | None] = {}  # vehicle -> its node (vehicles table)
        self._vehicle_of: dict[str, str] = {}  # node -> the vehicle it rides in
        self._vehicles_at = float("-inf")
        self._configs: dict[str, dict[str, frozenset[str]]] = {}
        # class -> id -> nodes whose config lists it
        self._claimed: dict[str, dict[str, set[str]]] = {}

    async def _load_configs(self, conn: AsyncConnection) -> None:
        configs: dict[str, dict[str, frozenset[str]]] = {}
        claimed: dict[str, dict[str, set[str]]] = {}
        for row in await conn.execute(select(NODE_CONFIGS.c.node_id, NODE_CONFIGS.c.config)):
            if not isinstance(row.config, dict):
                continue
            bound = configs[row.node_id] = config_bindings(row.config)
            for cls, ids in bound.items():
                owners = claimed.setdefault(cls, {})
                for ident in ids:
                    owners.setdefault(ident, set()).add(row.node_id)
        self._configs, self._claimed = configs, claimed
        self._configs_at = self._clock()

    async def _load_vehicles(self, conn: AsyncConnection) -> None:
        rows = await conn.execute(select(TRANSPORT_VEHICLES.c.id, TRANSPORT_VEHICLES.c.node_id))
        vehicles = {row.id: row.node_id for row in rows}
        self.vehicles = vehicles
        self._vehicle_of = {node: v for v, node in vehicles.items() if node is not None}
        self._vehicles_at = self._clock()

    async def load(self, conn: AsyncConnection) -> None:
        # Messages are checked (check_cached) while the queries run: the new copy
        # replaces the old one, and is marked current, only once it is complete.
        generation, loaded_at = _generation, self._clock()
        desks = {
            row.id: row.node_id for row in await conn.execute(select(DESKS.c.id, DESKS.c.node_id))
        }
        rooms = {
            row.id: (row.node_id, row.sensor_id)
            for row in await conn.execute(select(ROOMS.c.id, ROOMS.c.node_id, ROOMS.c.sensor_id))
        }
        await self._load_configs(conn)
        await self._load_vehicles(conn)
        self.desks, self.rooms = desks, rooms
        self._generation, self._loaded_at = generation, loaded_at

    async def ensure_fresh(self, conn: AsyncConnection) -> None:
        """Reads the bindings again if they are too old or known to have changed."""
        if self._generation != _generation or self._clock() - self._loaded_at >= self._max_age:
            await self.load(conn)

    async def recheck(self, conn: AsyncConnection, refusals: Sequence[Refusal]) -> bool:
        """After refusals: reads again what they were decided on, so a desk or room just
        added (e.g. by another process) is not refused from an old copy.

        Desks and rooms are read by id (one query each, only the refused ids, so a node
        naming garbage costs little); node configs are read in full, at most once per
        `recheck_interval_s`. Returns whether anything was read, i.e. whether checking
        again can change the answer.
        """
        desks = {r.ident for r in refusals if r.source == "desk"}
        rooms = {r.ident for r in refusals if r.source == "room"}
        configs = any(r.source == "config" for r in refusals)
        vehicles = any(r.source == "vehicle" for r in refusals)
        read = False
        if desks:
            found = {
                row.id: row.node_id
                for row in await conn.execute(
                    select(DESKS.c.id, DESKS.c.node_id).where(DESKS.c.id.in_(desks))
                )
            }
            for desk in desks:
                if desk in found:
                    self.desks[desk] = found[desk]
                else:
                    self.desks.pop(desk, None)
            read = True
        if rooms:
            found_rooms = {
                row.id: (row.node_id, row.sensor_id)
                for row in await conn.execute(
                    select(ROOMS.c.id, ROOMS.c.node_id, ROOMS.c.sensor_id).where(
                        ROOMS.c.id.in_(rooms)
                    )
                )
            }
            for room in rooms:
                if room in found_rooms:
                    self.rooms[room] = found_rooms[room]
                else:
                    self.rooms.pop(room, None)
            read = True
        if configs and self._clock() - self._configs_at >= self._recheck_interval:
            await self._load_configs(conn)
            read = True
        # The vehicles table is small (one row per vehicle): read whole, rate-limited too.
        if vehicles and self._clock() - self._vehicles_at >= self._recheck_interval:
            await self._load_vehicles(conn)
            read = True
        return read

    # --- the checks (pure, against the in-memory copy) ---------------------------------

    def desk(self, node: str, desk: str) -> Refusal | None:
        owner = self.desks.get(desk)
        if owner is None:
            return Refusal(UNKNOWN, f"desk {desk}", "desk", desk)
        return None if owner == node else Refusal(NOT_BOUND, f"desk {desk}", "desk", desk)

    def room(self, node: str, room: str, sensor: str | None) -> Refusal | None:
        bound = self.rooms.get(room)
        if bound is None:
            return Refusal(UNKNOWN, f"room {room}", "room", room)
        owner, room_sensor = bound
        if owner != node:  # includes a room no node is bound to
            return Refusal(NOT_BOUND, f"room {room}", "room", room)
        if sensor is not None and room_sensor is not None and sensor != room_sensor:
            return Refusal(NOT_BOUND, f"sensor {sensor} of room {room}", "room", room)
        return None

    def configured(self, node: str, cls: str, ident: str) -> Refusal | None:
        """The rule for what only node configs bind (doors, vehicles, zones, devices)."""
        own = self._configs.get(node, {}).get(cls)
        if own is not None:
            return None if ident in own else Refusal(NOT_BOUND, f"{cls} {ident}", ident=ident)
        owners = self._claimed.get(cls, {}).get(ident)
        if owners and node not in owners:
            return Refusal(NOT_BOUND, f"{cls} {ident}", ident=ident)
        return None

    def vehicle(self, node: str, vehicle: str) -> Refusal | None:
        """A vehicle in the vehicles table: only its node; a node riding in one: only that one.
        Otherwise the node-config rule."""
        if vehicle in self.vehicles:
            if self.vehicles[vehicle] == node:
                return None
            return Refusal(NOT_BOUND, f"vehicle {vehicle}", "vehicle", vehicle)
        if node in self._vehicle_of:
            return Refusal(
                NOT_BOUND, f"vehicle {vehicle} (node rides in {self._vehicle_of[node]})",
                "vehicle", vehicle,
            )  # fmt: skip
        return self.configured(node, "vehicles", vehicle)

    def check_cached(self, msg: contract.Message) -> Refusal | None:
        """`check` on the copy as it is, for the synchronous receive path; None (decide
        later) when it was never read or is known to be out of date."""
        if self._generation != _generation:
            return None
        return self.check(msg)

    def check(self, msg: contract.Message) -> Refusal | None:
        """Why `msg` names something its node may not speak for; None if it may."""
        node = msg.node
        if isinstance(
            msg,
            (
                contract.CheckIn,
                contract.CheckOut,
                contract.TapRefused,
                contract.ButtonPressed,
                contract.UnitStatus,
                contract.Presence,
                contract.Heartbeat,
            ),
        ):
            return self.desk(node, msg.desk)
        if isinstance(msg, contract.RoomPresence):
            return self.room(node, msg.room, msg.sensor)
        if isinstance(msg, (contract.AccessDecision, contract.DoorStatus)):
            return self.configured(node, "doors", msg.door)
        if isinstance(msg, (contract.Position, contract.Boarding, contract.PoolCarUse)):
            return self.vehicle(node, msg.vehicle)
        if isinstance(msg, contract.DeviceHealth):
            if msg.kind == "deskunit":  # a desk unit is known by its desk
                return self.desk(node, msg.device)
            return self.configured(node, f"device:{msg.kind}", msg.device)
        if isinstance(msg, contract.BadgePresence):
            if msg.desk is not None and (refusal := self.desk(node, msg.desk)):
                return refusal
            return self.configured(node, "zones", msg.zone)
        if isinstance(msg, contract.NodeState):
            for info in msg.desks:
                if refusal := self.desk(node, info.desk):
                    return refusal
        return None
