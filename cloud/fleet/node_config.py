"""Desired node configuration: what the cloud wants each edge node to run, and what it reports.

The desired config (a versioned subset of the edge settings, contract.ConfigPush)
is stored here and published retained on the node's `commands/config`, so a node
that is offline gets it on its next connect. The node answers with
`config_status` events, which the generic ingestion path stores in `events`;
`reported()` reads the newest one back.

The table lives on its own metadata and is created on first use: it is a small
key/value store per node that nothing else joins, so it needs no migration step
before the API can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Table,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.models import Event
from cloud.db.tables import NODE_CONFIGS as node_configs
from cloud.db.tables import TRANSPORT_VEHICLES
from cloud.ingest import bindings
from ruang import contract

EVENTS = Event.__table__


class ConfigConflict(ValueError):
    """A version not newer than the stored one: nodes would ignore it."""


@dataclass(frozen=True, slots=True)
class Desired:
    node: str
    version: int
    config: dict[str, Any]
    updated_at: datetime


def check_keys(config: dict[str, Any]) -> None:
    refused = sorted(set(config) - contract.REMOTE_CONFIG_KEYS)
    if refused:
        raise ValueError(
            f"not settable remotely: {', '.join(refused)}; allowed: "
            f"{', '.join(sorted(contract.REMOTE_CONFIG_KEYS))}"
        )


async def check_vehicles(conn: AsyncConnection, node: str, config: dict[str, Any]) -> None:
    """A `gps` entry names the vehicle its fixes are for (`vehicle`, else its `device`): a
    vehicle another node rides in is refused, and a node riding in a vehicle
    (`transport_vehicles.node_id`) may name only that one."""
    if "gps" not in config:
        return
    named = bindings.config_bindings({"gps": config["gps"]}).get("vehicles", frozenset())
    rows = await conn.execute(
        select(TRANSPORT_VEHICLES.c.id, TRANSPORT_VEHICLES.c.node_id).where(
            (TRANSPORT_VEHICLES.c.id.in_(sorted(named))) | (TRANSPORT_VEHICLES.c.node_id == node)
        )
    )
    own = None
    for vehicle, owner in rows:
        if owner == node:
            own = vehicle
        elif owner is None:
            raise ValueError(f"gps: vehicle {vehicle} has no node; set its node_id first")
        else:
            raise ValueError(f"gps: vehicle {vehicle} is bound to node {owner}")
    others = sorted(named - {own}) if own is not None else []
    if others:
        raise ValueError(f"gps: this node rides in vehicle {own}; not {', '.join(others)}")


async def desired(conn: AsyncConnection, node: str) -> Desired | None:
    row = (await conn.execute(select(node_configs).where(node_configs.c.node_id == node))).first()
    if row is None:
        return None
    updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    return Desired(node, int(row.version), dict(row.config), updated)


async def store(
    conn: AsyncConnection, node: str, config: dict[str, Any], version: int | None
) -> Desired:
    """Stores the next desired config (not committed: the caller commits after publishing)."""
    check_keys(config)
    await check_vehicles(conn, node, config)
    current = await desired(conn, node)
    latest = current.version if current else 0
    if version is None:
        version = latest + 1
    elif version <= latest:
        raise ConfigConflict(f"version {version} is not newer than the stored {latest}")
    now = datetime.now(UTC)
    values = {"version": version, "config": config, "updated_at": now}
    if current is None:
        await conn.execute(node_configs.insert().values(node_id=node, **values))
    else:
        await conn.execute(
            update(node_configs).where(node_configs.c.node_id == node).values(**values)
        )
    # Doors, vehicles and devices a node may speak for come from here (cloud/ingest/bindings.py).
    bindings.changed()
    return Desired(node, version, config, now)


def push_for(desired: Desired) -> contract.ConfigPush:
    return contract.ConfigPush(node=desired.node, version=desired.version, config=desired.config)


async def reported(conn: AsyncConnection, node: str) -> dict[str, Any] | None:
    """The node's newest config_status (its payload plus when the cloud got it)."""
    events = cast(Table, EVENTS)
    row = (
        await conn.execute(
            select(events.c.payload, events.c.received_at)
            .where(events.c.node == node, events.c.kind == "config_status")
            .order_by(events.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return {**row.payload, "received_at": row.received_at}
