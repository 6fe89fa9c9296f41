"""Boardings and pool-car uses name a vehicle: only the node riding in it may speak for it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from cloud.db.engine import make_engine, migrate
from cloud.db.tables import NODE_CONFIGS
from cloud.ingest.bindings import NOT_BOUND, Bindings, config_bindings
from ruang import contract

VEHICLE_CONFIG = {
    "vehicle": {"vehicle": "shuttle-07", "kind": "shuttle",
                "readers": [{"id": "door-1", "port": "/dev/ttyUSB1"}]},
}  # fmt: skip


def test_the_vehicle_key_binds_the_vehicle_and_its_door_readers() -> None:
    bound = config_bindings(VEHICLE_CONFIG)
    assert bound["vehicles"] == frozenset({"shuttle-07"})
    assert bound["device:door"] == frozenset({"door-1"})
    both = config_bindings(VEHICLE_CONFIG | {"gps": [{"device": "gps-1", "vehicle": "bus-9"}]})
    assert both["vehicles"] == frozenset({"bus-9", "shuttle-07"})
    assert config_bindings({"vehicle": "garbage"}) == {}


def _boarding(node: str, vehicle: str) -> contract.Boarding:
    return contract.Boarding(
        node=node, vehicle=vehicle, reader="door-1", badge="04A1B2C3", allowed=True,
        reason="walk_on",
    )  # fmt: skip


async def test_only_the_node_in_the_vehicle_may_report_its_boardings_and_car_uses(
    database_url: str,
) -> None:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(NODE_CONFIGS).values(
                    node_id="node-s", version=1, config=VEHICLE_CONFIG, updated_at=datetime.now(UTC)
                )
            )
            b = Bindings()
            await b.load(conn)
    finally:
        await engine.dispose()
    assert b.check(_boarding("node-s", "shuttle-07")) is None
    refusal = b.check(_boarding("node-x", "shuttle-07"))
    assert refusal is not None and refusal.category == NOT_BOUND
    assert b.check(_boarding("node-s", "other-bus")) is not None
    car = contract.PoolCarUse(
        node="node-x", vehicle="shuttle-07", reader="r", badge="04A1B2C3", action="pickup",
        reason="booked",
    )  # fmt: skip
    assert b.check(car) is not None
    # A vehicle no node config names: the node's own file config may hold it.
    assert b.check(_boarding("node-x", "car-unlisted")) is None
