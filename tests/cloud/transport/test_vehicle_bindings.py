"""A vehicle's node, and only it, may speak for the vehicle: positions, boardings, pool-car taps;
its node config's `gps` must name that vehicle (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.fleet import node_config
from cloud.ingest.bindings import NOT_BOUND, Bindings
from cloud.transport import vehicles
from cloud.transport.schemas import VehicleCreate, VehiclePatch
from ruang import contract
from tests.cloud.binding_helpers import bind


def position(node: str, vehicle: str) -> contract.Position:
    return contract.Position(
        node=node, vehicle=vehicle, lat=-0.97, lon=116.7, speed_kmh=20, fix_quality=1
    )


def boarding(node: str, vehicle: str) -> contract.Boarding:
    return contract.Boarding(
        node=node, vehicle=vehicle, reader="door", badge="04A1B2C3D4E5F6", allowed=True,
        reason="walk_on",
    )  # fmt: skip


def poolcar(node: str, vehicle: str) -> contract.PoolCarUse:
    return contract.PoolCarUse(
        node=node, vehicle=vehicle, reader="dash", badge="04A1B2C3D4E5F6", action="pickup",
        reason="booked",
    )  # fmt: skip


async def make(engine: AsyncEngine, vid: str, node: str | None, kind: str = "shuttle") -> None:
    extra = {"plate": "KT 1 IKN", "site_id": "bindings-site"} if kind == "poolcar" else {}
    await vehicles.create_vehicle(
        engine,
        VehicleCreate(id=vid, kind=kind, label=vid, seats=4, node_id=node, **extra),  # type: ignore[arg-type]
    )


async def test_only_the_vehicles_node_speaks_for_it(engine: AsyncEngine) -> None:
    await bind(engine, "desk-node", ["D1"])  # gives the test site
    await make(engine, "bus-1", "vnode-1")
    await make(engine, "car-1", "vnode-2", kind="poolcar")
    await make(engine, "bus-parked", None)
    b = Bindings()
    async with engine.connect() as conn:
        await b.load(conn)
    for msg in (position, boarding, poolcar):
        assert b.check(msg("vnode-1", "bus-1")) is None
        assert b.check(msg("vnode-2", "car-1")) is None
        refused = b.check(msg("vnode-2", "bus-1"))
        assert refused is not None and refused.category == NOT_BOUND
        # A vehicle with no node bound: nobody speaks for it.
        assert b.check(msg("vnode-1", "bus-parked")) is not None
        # A node riding in bus-1 names a vehicle nobody lists: still not its own.
        assert b.check(msg("vnode-1", "ghost-bus")) is not None
    # A node riding in nothing, naming a vehicle nobody lists: the node-config rule (allowed).
    assert b.check(position("other-node", "ghost-bus")) is None


async def test_a_binding_made_by_another_process_is_read_again_before_refusing(
    engine: AsyncEngine,
) -> None:
    await make(engine, "bus-2", None)
    b = Bindings(recheck_interval_s=0)
    async with engine.connect() as conn:
        await b.load(conn)
        refused = b.check(position("vnode-9", "bus-2"))
        assert refused is not None
        # Bound elsewhere (a direct write, no changed() in this process).
        await conn.execute(
            vehicles.VEHICLES.update()
            .where(vehicles.VEHICLES.c.id == "bus-2")
            .values(node_id="vnode-9")
        )
        await conn.commit()
        assert await b.recheck(conn, [refused])
    assert b.check(position("vnode-9", "bus-2")) is None


async def test_a_vehicle_nodes_config_must_name_its_own_vehicle(engine: AsyncEngine) -> None:
    await make(engine, "bus-3", "vnode-3")
    await make(engine, "bus-4", "vnode-4")
    await make(engine, "bus-idle", None)
    async with engine.begin() as conn:
        ok = await node_config.store(
            conn, "vnode-3", {"gps": [{"device": "gps0", "vehicle": "bus-3", "port": "x"}]}, None
        )
        assert ok.version == 1
        for gps, why in (
            ({"device": "gps0", "vehicle": "bus-4", "port": "x"}, "bound to node vnode-4"),
            ({"device": "gps0", "vehicle": "bus-idle", "port": "x"}, "has no node"),
            ({"device": "gps0", "vehicle": "bus-99", "port": "x"}, "rides in vehicle bus-3"),
            ({"device": "bus-4", "port": "x"}, "bound to node vnode-4"),  # vehicle = device
        ):
            with pytest.raises(ValueError, match=why):
                await node_config.store(conn, "vnode-3", {"gps": [gps]}, None)


async def test_a_node_rides_in_one_vehicle(engine: AsyncEngine) -> None:
    from cloud.errors import Conflict

    await make(engine, "bus-5", "vnode-5")
    with pytest.raises(Conflict):
        await make(engine, "bus-6", "vnode-5")
    await make(engine, "bus-6", None)
    with pytest.raises(Conflict):
        await vehicles.update_vehicle(engine, "bus-6", VehiclePatch(node_id="vnode-5"))
    # Unbinding frees the node for another vehicle.
    await vehicles.update_vehicle(engine, "bus-5", VehiclePatch(node_id=None))
    moved = await vehicles.update_vehicle(engine, "bus-6", VehiclePatch(node_id="vnode-5"))
    assert moved.node_id == "vnode-5"
    async with engine.connect() as conn:
        assert (await vehicles.vehicle_of_node(conn, "vnode-5")).id == "bus-6"  # type: ignore[union-attr]
