"""The Applier refuses what a node names but is not bound to, on SQLite and PostgreSQL.

Desks and rooms are bound by the layout, doors, vehicles, zones and devices by the
node's desired config (cloud/ingest/bindings.py); node-a has a config, node-b has none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.engine import make_engine, migrate
from cloud.db.models_fleet import DeviceStatus
from cloud.db.tables import DESKS, EVENTS, ROOMS
from cloud.fleet import node_config
from cloud.ingest.apply import Applier, ApplyResult, Envelope, Item, TelemetryBatch
from cloud.ingest.bindings import NOT_BOUND, UNKNOWN, Bindings, config_bindings
from ruang import contract
from tests.cloud.binding_helpers import bind

BADGE = "04A1B2C3D4E5F6"
TS = 1_750_000_000.0
A_CONFIG: dict[str, Any] = {
    "doors": [{"id": "door-a"}],
    "gps": [{"device": "gps-a", "vehicle": "bus-a"}],
    "radars": [{"device": "radar-a", "room": "RA"}],
    "ble": {
        "device_id": "ble-a",
        "scanners": [{"id": "scan-a", "zone": "zone-a"}],
        "badges": [{"id": "badge-a"}],
    },
}


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate(database_url)
    engine = make_engine(database_url)
    await bind(engine, "node-a", ["A1"], rooms=["RA"], sensors={"RA": "radar-a"})
    await bind(engine, "node-b", ["B1"], rooms=["RB"])
    async with engine.begin() as conn:
        await node_config.store(conn, "node-a", A_CONFIG, None)
    try:
        yield engine
    finally:
        await engine.dispose()


async def run(applier: Applier, engine: AsyncEngine, items: Sequence[Item]) -> ApplyResult:
    async with engine.begin() as conn:
        result = await applier.apply(conn, items)
    applier.committed(result)
    return result


def event(msg: contract.Message) -> Envelope:
    kind = "" if isinstance(msg, contract.NodeState) else contract.kind_of(msg)
    channel = contract.Channel.STATE if not kind else contract.Channel.EVENTS
    return Envelope(contract.ParsedTopic(msg.node, channel, kind), msg, TS)


async def desk(engine: AsyncEngine, desk_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(DESKS).where(DESKS.c.id == desk_id))).first()


async def count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_checkin_for_another_nodes_desk_is_recorded_once_as_refused_and_changes_nothing(
    engine: AsyncEngine,
) -> None:
    applier = Applier(engine.dialect.name)
    forged = contract.CheckIn(node="node-a", desk="B1", badge=BADGE, ts=TS)
    result = await run(applier, engine, [event(forged)])
    assert result.refused == {NOT_BOUND: 1} and result.applied == 0
    row = await desk(engine, "B1")
    assert row.state == "free" and row.occupant_badge is None
    async with engine.connect() as conn:
        stored = (await conn.execute(select(EVENTS).where(EVENTS.c.message_id == forged.id))).one()
    assert (stored.kind, stored.desk, stored.badge) == ("refused", None, None)
    assert stored.payload == {"kind": "checkin", "reason": NOT_BOUND, "resource": "desk B1"}
    # The node resends it (no ack yet): a duplicate, refused once only.
    again = await run(applier, engine, [event(forged)])
    assert again.duplicates == 1 and again.refused == {}
    # The desk's own node still checks in.
    own = await run(
        applier, engine, [event(contract.CheckIn(node="node-b", desk="B1", badge=BADGE, ts=TS + 1))]
    )
    assert own.applied == 1 and own.refused == {}
    assert (await desk(engine, "B1")).state == "occupied"


async def test_desk_events_for_an_unknown_desk_never_create_it(engine: AsyncEngine) -> None:
    applier = Applier(engine.dialect.name)
    desks_before = await count(engine, DESKS)
    ghosts = [
        contract.CheckIn(node="node-a", desk="GHOST", badge=BADGE, ts=TS),
        contract.CheckOut(node="node-a", desk="GHOST", badge=BADGE, ts=TS),
        contract.TapRefused(node="node-a", desk="GHOST", badge=BADGE, reason="x", ts=TS),
        contract.ButtonPressed(node="node-a", desk="GHOST", button=1, ts=TS),
        contract.UnitStatus(node="node-a", desk="GHOST", online=True, ts=TS),
    ]
    result = await run(applier, engine, [event(m) for m in ghosts])
    assert result.refused == {UNKNOWN: len(ghosts)}
    assert await count(engine, DESKS) == desks_before
    assert await count(engine, EVENTS, EVENTS.c.kind == "refused") == len(ghosts)


async def test_presence_only_reaches_the_nodes_own_desks(engine: AsyncEngine) -> None:
    applier = Applier(engine.dialect.name)
    batch = TelemetryBatch(
        count=3,
        presence={
            "A1": ("node-a", True, TS),
            "B1": ("node-a", True, TS),
            "GHOST": ("node-a", True, TS),
        },
    )
    result = await run(applier, engine, [batch])
    assert result.refused == {NOT_BOUND: 1, UNKNOWN: 1} and result.applied == 1
    assert (await desk(engine, "A1")).present is True
    assert (await desk(engine, "B1")).present is None
    assert await desk(engine, "GHOST") is None
    assert set(result.presence_written) == {"A1"}


async def test_room_presence_needs_the_rooms_node_and_its_sensor(engine: AsyncEngine) -> None:
    applier = Applier(engine.dialect.name)
    batch = TelemetryBatch(
        count=4,
        rooms={
            "RB": ("node-a", True, TS, None),  # node-b's room
            "NOPE": ("node-a", True, TS, None),  # not in the layout
            "RA": ("node-a", True, TS, "radar-z"),  # the room names radar-a as its sensor
        },
    )
    result = await run(applier, engine, [batch])
    assert result.refused == {NOT_BOUND: 2, UNKNOWN: 1}
    async with engine.connect() as conn:
        occupied = dict((await conn.execute(select(ROOMS.c.id, ROOMS.c.occupied))).all())
    assert occupied["RB"] is None and occupied["RA"] is None and "NOPE" not in occupied
    ok = await run(
        applier,
        engine,
        [
            TelemetryBatch(
                count=2,
                rooms={"RA": ("node-a", True, TS, "radar-a"), "RB": ("node-b", True, TS, None)},
            )
        ],
    )
    assert ok.refused == {} and ok.rooms_changed == {"RA", "RB"}


async def test_doors_follow_the_node_config_and_are_exclusive_to_it(engine: AsyncEngine) -> None:
    applier = Applier(engine.dialect.name)
    h = "0" * 64

    def access(node: str, door: str, seq: int) -> contract.AccessDecision:
        return contract.AccessDecision(
            node=node, door=door, granted=True, reason="ok", audit_seq=seq, audit_hash=h, ts=TS
        )

    result = await run(
        applier,
        engine,
        [
            event(access("node-a", "door-a", 1)),  # in node-a's config
            event(access("node-a", "door-x", 2)),  # node-a's config lists its doors: not this one
            event(access("node-b", "door-a", 1)),  # node-b has no config, but door-a is node-a's
            event(access("node-b", "door-x", 2)),  # nobody's config names it: node-b's file config
            event(contract.DoorStatus(node="node-b", door="door-a", condition="tamper", ts=TS)),
        ],
    )
    assert result.refused == {NOT_BOUND: 3} and result.applied == 2


async def test_devices_vehicles_and_zones_follow_the_node_config(engine: AsyncEngine) -> None:
    applier = Applier(engine.dialect.name)

    def health(node: str, device: str, kind: Any) -> tuple[tuple[str, str], Any]:
        msg = contract.DeviceHealth(node=node, device=device, kind=kind, online=True, ts=TS)
        return (node, device), (msg, TS)

    batch = TelemetryBatch(
        count=6,
        devices=dict(
            [
                health("node-a", "radar-a", "radar"),
                health("node-a", "radar-z", "radar"),  # not in node-a's radars
                health("node-b", "radar-a", "radar"),  # node-a's radar
                health("node-b", "gps-9", "gps"),  # node-b's own file config
                health("node-a", "B1", "deskunit"),  # a desk unit is its desk: node-b's
                health("node-a", "ble-a", "ble_scanner"),
            ]
        ),
    )
    result = await run(applier, engine, [batch])
    assert result.refused == {NOT_BOUND: 3}
    async with engine.connect() as conn:
        stored = set((await conn.execute(select(DeviceStatus.node_id, DeviceStatus.device))).all())
    assert stored == {("node-a", "radar-a"), ("node-b", "gps-9"), ("node-a", "ble-a")}
    # Series-only kinds are checked by the same rules (on receipt, in cloud/ingest/pipeline.py).
    b = applier.bindings
    assert (
        b.check(
            contract.Position(
                node="node-a", vehicle="bus-a", lat=0, lon=0, speed_kmh=0, fix_quality=1
            )
        )
        is None
    )
    assert (
        b.check(
            contract.Position(
                node="node-b", vehicle="bus-a", lat=0, lon=0, speed_kmh=0, fix_quality=1
            )
        )
        is not None
    )
    zone = contract.BadgePresence(
        node="node-a", badge="ble:x", zone="zone-a", present=True, confidence=1
    )
    assert b.check(zone) is None
    assert b.check(zone.model_copy(update={"zone": "zone-z"})) is not None
    assert b.check(zone.model_copy(update={"desk": "B1"})) is not None
    assert b.check(contract.Heartbeat(node="node-a", desk="B1", uptime_s=1)) is not None
    assert b.check(contract.Heartbeat(node="node-b", desk="B1", uptime_s=1)) is None


async def test_birth_declares_only_the_nodes_own_desks(engine: AsyncEngine) -> None:
    applier = Applier(engine.dialect.name)
    birth = contract.NodeState(
        node="node-a",
        online=True,
        bdseq=1,
        ts=TS,
        desks=(
            contract.DeskInfo(desk="A1", unit="unit-a1"),
            contract.DeskInfo(desk="B1", unit="evil"),
            contract.DeskInfo(desk="GHOST", unit="evil"),
        ),
    )
    result = await run(applier, engine, [event(birth)])
    assert result.refused == {NOT_BOUND: 1, UNKNOWN: 1} and result.applied == 1
    assert (await desk(engine, "A1")).unit == "unit-a1"
    assert (await desk(engine, "B1")).unit is None
    assert await desk(engine, "GHOST") is None


async def test_a_desk_added_to_the_layout_is_picked_up_by_a_running_applier(
    engine: AsyncEngine,
) -> None:
    applier = Applier(engine.dialect.name, bindings=Bindings(max_age_s=3600))
    await run(applier, engine, [TelemetryBatch(count=1, presence={"A1": ("node-a", True, TS)})])
    await bind(engine, "node-a", ["A1", "A2"])  # the layout gains a desk
    result = await run(
        applier, engine, [event(contract.CheckIn(node="node-a", desk="A2", badge=BADGE, ts=TS))]
    )
    assert result.refused == {} and (await desk(engine, "A2")).state == "occupied"


def test_config_bindings_list_only_the_keys_the_config_sets() -> None:
    assert config_bindings({"radars": [{"device": "r1", "desk": "D1"}]}) == {
        "device:radar": frozenset({"r1"})
    }
    bound = config_bindings(A_CONFIG)
    assert bound["vehicles"] == {"bus-a"} and bound["device:gps"] == {"gps-a"}
    assert bound["doors"] == {"door-a"} and bound["zones"] == {"zone-a"}
    assert bound["device:ble_scanner"] == {"scan-a", "ble-a"}
    # Garbage in a stored config binds nothing rather than failing ingestion.
    assert config_bindings({"doors": "nope", "gps": [1, None]}) == {
        "doors": frozenset(),
        "device:door": frozenset(),
        "vehicles": frozenset(),
        "device:gps": frozenset(),
    }


async def test_a_desk_written_by_another_process_is_read_again_before_a_refusal(
    engine: AsyncEngine,
) -> None:
    # Fresh copy, long max age, and a desk that appears without `bindings.changed()`
    # (as when another process applies the layout): checked in the database first.
    applier = Applier(engine.dialect.name, bindings=Bindings(max_age_s=3600))
    await run(applier, engine, [TelemetryBatch(count=1, presence={"A1": ("node-a", True, TS)})])
    async with engine.begin() as conn:
        await conn.execute(DESKS.insert().values(id="A3", node_id="node-a", state="free"))
    result = await run(
        applier,
        engine,
        [
            event(contract.CheckIn(node="node-a", desk="A3", badge=BADGE, ts=TS)),
            TelemetryBatch(count=1, presence={"A3": ("node-a", True, TS)}),
        ],
    )
    assert result.refused == {}
    row = await desk(engine, "A3")
    assert row.state == "occupied" and row.present is True
