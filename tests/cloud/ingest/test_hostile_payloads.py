"""Hostile but schema-shaped payloads, generated from the contract's own models, over Mosquitto.

For every event, telemetry and state model and every one of its fields, the
field is replaced by extreme values (huge and negative numbers, NaN/Infinity
tokens, long and non-ASCII strings, long lists, NUL...), interleaved with valid
check-ins. Each hostile payload must be refused at decode (counted) or parked
as a dead letter, or, if it is in fact valid, applied once; every valid event
is applied exactly once; and the cloud keeps ingesting across a restart.

The desks and the room the samples and the valid check-ins name are bound to the
node (a layout; the node has no desired config, so its doors, vehicles, zones
and devices are its own): a payload is then refused by the bindings
(cloud/ingest/bindings.py) only where the hostile value renamed what it speaks for,
which `expect` predicts from the test's own list of bound ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiomqtt
from sqlalchemy import func, select

from cloud.db.tables import EVENTS
from cloud.ingest.dead_letters import DEAD_LETTERS
from cloud.ingest.stats import IngestStats
from cloud.settings import CloudSettings
from launch import devservers
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import RunningCloud, eventually, publish, start_cloud, unique

BADGE = "04A1B2C3D4E5F6"
# Raw JSON tokens: NaN and Infinity are not JSON, but some encoders emit them.
HOSTILE_TOKENS: tuple[str, ...] = (
    "1e12",
    "1e300",
    "-1e300",
    "-1",
    "0",
    "1.5",
    str(2**31),
    str(2**63),
    str(2**64),
    str(-(2**63) - 1),
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "null",
    "true",
    '""',
    json.dumps("x" * 20_000),
    json.dumps("ąę中文😀 " * 40, ensure_ascii=False),
    json.dumps("a\u0000b"),
    json.dumps(["alarm"] * 5_000),
    json.dumps([{"desk": f"d{i}"} for i in range(3_000)]),
    "{}",
    json.dumps({"k": "v" * 1000}),
)


ROOM, SENSOR = "room-1", "radar-1"
BINDING_CATEGORIES = ("unknown_resource", "not_bound")


def sample_desk(node: str) -> str:
    return f"{node}-d1"


def samples(node: str, now: float) -> dict[str, contract.Message]:
    """One valid message of every kind the cloud ingests (and the state message)."""
    desk = sample_desk(node)
    out: dict[str, contract.Message] = {
        "checkin": contract.CheckIn(node=node, desk=desk, badge=BADGE, ts=now),
        "checkout": contract.CheckOut(node=node, desk=desk, badge=BADGE, ts=now),
        "tap_refused": contract.TapRefused(node=node, desk=desk, badge=BADGE, reason="no", ts=now),
        "button": contract.ButtonPressed(node=node, desk=desk, button=1, ts=now),
        "unit_status": contract.UnitStatus(
            node=node, desk=desk, online=True, unit="u1", firmware="fw1", ts=now
        ),
        "access": contract.AccessDecision(
            node=node,
            door="door-1",
            badge=BADGE,
            granted=True,
            reason="ok",
            audit_seq=1,
            audit_hash="0" * 64,
            ts=now,
        ),
        "door_status": contract.DoorStatus(
            node=node, door="door-1", condition="online", detail="ok", ts=now
        ),
        "config_status": contract.ConfigStatus(
            node=node, version=1, applied=False, error="e", active_version=1, ts=now
        ),
        "presence": contract.Presence(node=node, desk=desk, present=True, ts=now),
        "room_presence": contract.RoomPresence(
            node=node, room=ROOM, present=True, sensor=SENSOR, ts=now
        ),
        "heartbeat": contract.Heartbeat(node=node, desk=desk, uptime_s=5, ts=now),
        "health": contract.NodeHealth(
            node=node,
            uptime_s=5,
            rss_bytes=1,
            rejected_frames=0,
            mqtt_reconnects=0,
            units_online=1,
            cpu_pct=1.0,
            mem_available_bytes=1,
            disk_free_bytes=10**9,
            temperature_c=40,
            outbox_depth=0,
            dropped_telemetry=0,
            alarms=("a",),
            config_version=1,
            ts=now,
        ),
        "badge_presence": contract.BadgePresence(
            node=node,
            badge=BADGE,
            zone="zone-1",
            desk=desk,
            present=True,
            confidence=0.5,
            rssi=-60,
            ts=now,
        ),
        "position": contract.Position(
            node=node,
            vehicle="car-1",
            lat=1,
            lon=1,
            speed_kmh=1,
            heading_deg=1,
            fix_quality=1,
            satellites=5,
            hdop=1,
            ts=now,
        ),
        "boarding": contract.Boarding(
            node=node,
            vehicle="car-1",
            reader="door-1",
            badge=BADGE,
            allowed=True,
            reason="walk_on",
            trip="T-1",
            service_date="20261207",
            stop="S-1",
            reservation="17",
            lat=1,
            lon=1,
            ts=now,
        ),
        "poolcar": contract.PoolCarUse(
            node=node,
            vehicle="car-1",
            reader="door-1",
            badge=BADGE,
            action="pickup",
            reason="booked",
            booking="3",
            lat=1,
            lon=1,
            ts=now,
        ),
        "device_health": contract.DeviceHealth(
            node=node,
            device=SENSOR,
            kind="radar",
            online=True,
            rejected_frames=0,
            last_reading_ts=now,
            battery_pct=50,
            detail="d",
            ts=now,
        ),
        "state": contract.NodeState(
            node=node,
            online=True,
            bdseq=1,
            sw_version="1",
            desks=(contract.DeskInfo(desk=desk, unit="u1"),),
            outbox_depth=0,
            config_version=1,
            ts=now,
        ),
    }
    # A kind added to the contract must get a sample (and so its hostile variants).
    assert set(out) == {*contract.EVENT_KINDS, *contract.TELEMETRY_KINDS, "state"}
    return out


@dataclass(frozen=True)
class Hostile:
    topic: str
    payload: bytes
    qos: int
    kind: str


def hostile_payloads(node: str, now: float) -> Iterator[Hostile]:
    """Every field of every model replaced by every hostile token (fresh message id each)."""
    for kind, base in samples(node, now).items():
        topic = contract.topic_for(base)
        qos = contract.qos_for(base)
        for field in type(base).model_fields:
            for token in HOSTILE_TOKENS:
                fields = json.loads(contract.encode(base))
                fields["id"] = contract.new_message_id()
                fields[field] = "__HOSTILE__"
                text = json.dumps(fields, ensure_ascii=False).replace('"__HOSTILE__"', token)
                yield Hostile(topic, text.encode(), qos, kind)


@dataclass
class Expected:
    refused: int = 0  # at decode: by the contract or the clock window
    parked: set[str] | None = None  # event ids refused for their clock: dead letters
    stored: set[str] | None = None  # events and state that are in fact valid
    unbound: int = 0  # valid, but naming what the node is not bound to: counted
    unbound_events: set[str] | None = None  # ... of them events: recorded as `refused`


def names_only_bound(message: contract.Message, node: str) -> bool:
    """Whether `message` names only what the test bound to `node` (see the module doc).

    Doors, vehicles, zones and devices other than a desk unit are the node's own
    (no desired config binds them), so only desks, the room and its sensor matter.
    """
    desks = {sample_desk(node)}
    if isinstance(message, contract.NodeState):
        return all(info.desk in desks for info in message.desks)
    if isinstance(message, contract.RoomPresence):
        return message.room == ROOM and message.sensor in (None, SENSOR)
    if isinstance(message, contract.DeviceHealth):
        return message.kind != "deskunit" or message.device in desks
    desk = getattr(message, "desk", None)
    return desk is None or desk in desks


def expect(items: list[Hostile], settings: CloudSettings, now: float, node: str) -> Expected:
    """What the cloud must do with each payload, from the contract and the test's bindings."""
    out = Expected(parked=set(), stored=set(), unbound_events=set())
    assert out.parked is not None and out.stored is not None
    assert out.unbound_events is not None
    for item in items:
        try:
            parsed, message = contract.decode(item.topic, item.payload)
        except contract.ContractError:
            out.refused += 1
            continue
        in_window = now - settings.ingest_max_age_s + 600 < message.ts < now + 60
        if parsed.channel is not contract.Channel.STATE and not in_window:
            out.refused += 1
            if parsed.kind in contract.EVENT_KINDS:
                out.parked.add(message.id)
        elif not names_only_bound(message, node):
            out.unbound += 1
            if parsed.kind in contract.EVENT_KINDS:
                out.unbound_events.add(message.id)
        elif parsed.kind not in contract.TELEMETRY_KINDS:
            out.stored.add(message.id)
    return out


def refused(stats: IngestStats) -> int:
    """Refused at decode (the contract or the clock window)."""
    return sum(n for category, n in stats.rejected.items() if category not in BINDING_CATEGORIES)


def refused_by_bindings(stats: IngestStats) -> int:
    return sum(stats.rejected.get(category, 0) for category in BINDING_CATEGORIES)


@dataclass
class Outcome:
    applied: dict[str, int]  # message id -> rows, refused ones left out
    refused: dict[str, int]  # message id -> rows recorded as kind `refused`
    parked: set[str]


async def _counts(cloud: RunningCloud, ids: set[str]) -> Outcome:
    async with cloud.app.state.engine.connect() as conn:
        rows = await conn.execute(
            select(EVENTS.c.message_id, EVENTS.c.kind, func.count())
            .where(EVENTS.c.message_id.in_(list(ids)))
            .group_by(EVENTS.c.message_id, EVENTS.c.kind)
        )
        parked = set(
            await conn.scalars(
                select(DEAD_LETTERS.c.message_id).where(DEAD_LETTERS.c.message_id.in_(list(ids)))
            )
        )
    out = Outcome({}, {}, parked)
    for mid, kind, n in rows:
        into = out.refused if kind == "refused" else out.applied
        into[mid] = into.get(mid, 0) + int(n)
    return out


async def _round(
    cloud: RunningCloud, publisher: aiomqtt.Client, settings: CloudSettings, node: str
) -> dict[str, int]:
    """Publishes hostile payloads interleaved with valid check-ins; checks the outcome."""
    now = time.time()
    hostile = list(hostile_payloads(node, now))
    want = expect(hostile, settings, now, node)
    assert want.parked is not None and want.stored is not None
    assert want.unbound_events is not None
    # Every valid check-in names a desk of its own, bound to the node like the samples'.
    desks = [unique("desk") for _ in range(len(hostile) // 10 + 2)]
    await bind(
        cloud.app.state.engine,
        node,
        [sample_desk(node), *desks],
        rooms=[ROOM],
        sensors={ROOM: SENSOR},
    )
    valid_desks = iter(desks)
    valid: list[contract.CheckIn] = []
    stats = cloud.ingestor.stats
    received, refused_before = stats.received, refused(stats)
    unbound_before = refused_by_bindings(stats)
    for i, item in enumerate(hostile):
        await publisher.publish(item.topic, item.payload, qos=item.qos)
        if i % 10 == 0:
            event = contract.CheckIn(node=node, desk=next(valid_desks), badge=BADGE)
            valid.append(event)
            await publish(publisher, event)
        if i % 200 == 199:  # keep the broker's queue to us short

            async def caught_up(upto: int = i + 1 + len(valid)) -> bool:
                return stats.received >= received + upto

            await eventually(caught_up, within=120)
    marker = contract.CheckIn(node=node, desk=next(valid_desks), badge=BADGE)
    valid.append(marker)
    await publish(publisher, marker)
    total = len(hostile) + len(valid)

    async def all_in() -> bool:
        seen = await _counts(cloud, {marker.id})
        return stats.received >= received + total and seen.applied == {marker.id: 1}

    await eventually(all_in, within=120)
    await cloud.ingestor.flush()
    valid_ids = {e.id for e in valid}
    seen = await _counts(cloud, valid_ids | want.parked | want.stored | want.unbound_events)
    stored, parked = seen.applied, seen.parked
    # Applied, not merely recorded: a valid check-in refused by the bindings fails here.
    assert {mid: stored.get(mid) for mid in valid_ids} == dict.fromkeys(valid_ids, 1)
    assert refused(stats) - refused_before == want.refused
    assert refused_by_bindings(stats) - unbound_before == want.unbound
    assert seen.refused == dict.fromkeys(want.unbound_events, 1)
    # Clock-refused events are parked; a valid-looking one failing in SQL would be too.
    assert want.parked <= parked
    sql_poison = parked - want.parked
    assert sql_poison <= want.stored
    assert all(stored.get(mid) == 1 for mid in want.stored - sql_poison)
    assert not (stored.keys() & parked)
    return {
        "hostile": len(hostile),
        "refused_at_decode": want.refused,
        "refused_by_bindings": want.unbound,
        "dead_lettered": len(parked),
        "dead_lettered_sql": len(sql_poison),
        "hostile_valid_stored": len(want.stored - sql_poison),
        "valid_stored": len(valid),
    }


async def test_hostile_payloads_are_refused_or_parked_and_valid_events_stored_once(
    settings: CloudSettings,
) -> None:
    node = unique("node")
    # A broker of its own: the counts must not include other tests' retained messages.
    with devservers.mosquitto() as broker:
        settings = settings.model_copy(update={"mqtt_url": broker.url})
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, identifier=unique("hostile-publisher")
        ) as publisher:
            async with start_cloud(settings) as cloud:
                first = await _round(cloud, publisher, settings, node)
            # A restart: the cloud must not be stuck on anything it saw before.
            async with start_cloud(settings) as cloud:
                second = await _round(cloud, publisher, settings, node)
                assert cloud.ingestor.stats.write_errors == 0
    print(
        f"\nhostile payload rounds ({settings.database_url.split(':')[0]}): "
        f"{first} / after restart {second}"
    )
    assert first["hostile"] > 1000 and first["refused_at_decode"] > 0
