"""Vehicles (shuttles and pool cars), their edge nodes and states, and the stops near each site.

A vehicle is bound to the edge node that rides in it (GPS receiver + door
reader) by `node_id`, unique: the node's positions, boardings and pool-car taps
may only name that vehicle (cloud/ingest/bindings.py reads the binding), and the
snapshot of a vehicle node carries its vehicle. Binding or unbinding a node
tells the ingest bindings to read again.

States: `in_service` (running trips), `off_duty` (parked, not in use),
`offline` (its node stopped reporting), `at_depot` (at its depot / home site).
`state_changed_at` moves only when the state does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.db.tables import SITES, TRANSPORT_SITE_STOPS, TRANSPORT_STOPS, TRANSPORT_VEHICLES
from cloud.errors import Conflict, Invalid, NotFound
from cloud.ingest import bindings
from cloud.transport.schemas import (
    SiteStopIn,
    SiteStopPublic,
    VehicleCreate,
    VehiclePatch,
    VehiclePublic,
)

VEHICLES = TRANSPORT_VEHICLES


def _public(row: Any) -> VehiclePublic:
    return VehiclePublic.model_validate(row)


async def list_vehicles(
    conn: AsyncConnection, *, kind: str | None = None, state: str | None = None
) -> list[VehiclePublic]:
    stmt = select(VEHICLES).order_by(VEHICLES.c.id)
    if kind is not None:
        stmt = stmt.where(VEHICLES.c.kind == kind)
    if state is not None:
        stmt = stmt.where(VEHICLES.c.state == state)
    return [_public(r) for r in await conn.execute(stmt)]


async def get_vehicle(conn: AsyncConnection, vehicle_id: str) -> VehiclePublic:
    row = (await conn.execute(select(VEHICLES).where(VEHICLES.c.id == vehicle_id))).first()
    if row is None:
        raise NotFound(f"vehicle {vehicle_id!r} is unknown", title="Vehicle not found")
    return _public(row)


async def vehicle_of_node(conn: AsyncConnection, node_id: str) -> VehiclePublic | None:
    """The vehicle `node_id` rides in, if any (for its snapshot and its bindings)."""
    row = (await conn.execute(select(VEHICLES).where(VEHICLES.c.node_id == node_id))).first()
    return _public(row) if row else None


async def _check_refs(conn: AsyncConnection, values: dict[str, Any], own_id: str) -> None:
    site = values.get("site_id")
    if (
        site is not None
        and (await conn.execute(select(SITES.c.id).where(SITES.c.id == site))).first() is None
    ):
        raise Invalid(f"site {site!r} is unknown", title="Unknown site")
    node = values.get("node_id")
    if node is not None:
        holder = (
            await conn.execute(select(VEHICLES.c.id).where(VEHICLES.c.node_id == node))
        ).scalar()
        if holder is not None and holder != own_id:
            raise Conflict(
                f"node {node!r} already rides in vehicle {holder!r}; unbind it there first",
                title="Node already bound",
            )


async def create_vehicle(engine: AsyncEngine, body: VehicleCreate) -> VehiclePublic:
    now = datetime.now(UTC)
    values = body.model_dump()
    values["capacity"] = body.capacity or body.seats
    values.update(state_changed_at=now, created_at=now)
    try:
        async with engine.begin() as conn:
            if (await conn.execute(select(VEHICLES.c.id).where(VEHICLES.c.id == body.id))).first():
                raise Conflict(f"vehicle {body.id!r} exists", title="Vehicle exists")
            await _check_refs(conn, values, body.id)
            await conn.execute(insert(VEHICLES).values(**values))
    except IntegrityError:
        # Two requests raced for the same id or node: the database kept one.
        raise Conflict("the vehicle id or its node is taken", title="Vehicle exists") from None
    if body.node_id:
        bindings.changed()
    async with engine.connect() as conn:
        return await get_vehicle(conn, body.id)


async def update_vehicle(
    engine: AsyncEngine, vehicle_id: str, patch: VehiclePatch
) -> VehiclePublic:
    changes = {k: getattr(patch, k) for k in patch.model_fields_set}
    for required in ("label", "seats", "wheelchair_accessible", "state"):
        if required in changes and changes[required] is None:
            raise Invalid(f"{required} cannot be null", title="Invalid vehicle")
    try:
        async with engine.begin() as conn:
            current = await get_vehicle(conn, vehicle_id)
            merged = {**current.model_dump(), **changes}
            if merged["capacity"] is None:
                merged["capacity"] = merged["seats"]
                changes["capacity"] = merged["seats"]
            if merged["capacity"] < merged["seats"]:
                raise Invalid("capacity must be at least the seats", title="Invalid vehicle")
            if merged["kind"] == "poolcar" and (not merged["plate"] or not merged["site_id"]):
                raise Invalid("a pool car needs a plate and a home site", title="Invalid vehicle")
            await _check_refs(conn, changes, vehicle_id)
            if "state" in changes and changes["state"] != current.state:
                changes["state_changed_at"] = datetime.now(UTC)
            if changes:
                await conn.execute(
                    update(VEHICLES).where(VEHICLES.c.id == vehicle_id).values(**changes)
                )
    except IntegrityError:
        raise Conflict("the node is taken by another vehicle", title="Node already bound") from None
    if "node_id" in changes:
        bindings.changed()
    async with engine.connect() as conn:
        return await get_vehicle(conn, vehicle_id)


async def set_state(conn: AsyncConnection, vehicle_id: str, state: str) -> bool:
    """Sets a vehicle's state (live tracking: in service, offline...); whether it changed.
    Not committed: the caller's transaction."""
    result = await conn.execute(
        update(VEHICLES)
        .where(VEHICLES.c.id == vehicle_id, VEHICLES.c.state != state)
        .values(state=state, state_changed_at=datetime.now(UTC))
    )
    return bool(result.rowcount)


# --- stops near a site ------------------------------------------------------------------------


async def site_stops(conn: AsyncConnection, site_id: str) -> list[SiteStopPublic]:
    """The stops near `site_id` that the current schedule has, nearest first."""
    rows = await conn.execute(
        select(TRANSPORT_STOPS, TRANSPORT_SITE_STOPS.c.walk_m)
        .join(TRANSPORT_SITE_STOPS, TRANSPORT_SITE_STOPS.c.stop_id == TRANSPORT_STOPS.c.stop_id)
        .where(TRANSPORT_SITE_STOPS.c.site_id == site_id)
        .order_by(TRANSPORT_SITE_STOPS.c.walk_m, TRANSPORT_STOPS.c.stop_id)
    )
    return [SiteStopPublic.model_validate(r) for r in rows]


async def set_site_stops(
    engine: AsyncEngine, site_id: str, stops: Sequence[SiteStopIn]
) -> list[SiteStopPublic]:
    """Replaces the stops near `site_id` (each must be in the current schedule)."""
    ids = [s.stop_id for s in stops]
    if len(set(ids)) != len(ids):
        raise Invalid("a stop is listed twice", title="Invalid stops")
    async with engine.begin() as conn:
        if (await conn.execute(select(SITES.c.id).where(SITES.c.id == site_id))).first() is None:
            raise NotFound(f"site {site_id!r} is unknown", title="Site not found")
        known = {
            r[0]
            for r in await conn.execute(
                select(TRANSPORT_STOPS.c.stop_id).where(TRANSPORT_STOPS.c.stop_id.in_(ids))
            )
        }
        unknown = sorted(set(ids) - known)
        if unknown:
            raise Invalid(
                f"not in the schedule: {', '.join(unknown)}", title="Unknown stops", stops=unknown
            )
        await conn.execute(
            TRANSPORT_SITE_STOPS.delete().where(TRANSPORT_SITE_STOPS.c.site_id == site_id)
        )
        if stops:
            await conn.execute(
                insert(TRANSPORT_SITE_STOPS),
                [{"site_id": site_id, "stop_id": s.stop_id, "walk_m": s.walk_m} for s in stops],
            )
    async with engine.connect() as conn:
        return await site_stops(conn, site_id)
