"""Ingestion from a real Mosquitto into SQL (SQLite and PostgreSQL) through the running app."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
from sqlalchemy import func, select

from cloud.db.tables import EVENTS
from cloud.ingest.decode import reject_category
from cloud.settings import CloudSettings
from launch import devservers
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import RunningCloud, eventually, publish, start_cloud, unique

BADGE = "04A1B2C3D4E5F6"


def recent(offset_s: float) -> float:
    """A whole-second edge time an hour ago plus `offset_s`: inside the ingestion window."""
    return float(int(time.time()) - 3600) + offset_s


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()[:19]


def birth(node: str, desks: list[str], bdseq: int = 1) -> contract.NodeState:
    return contract.NodeState(
        node=node,
        online=True,
        bdseq=bdseq,
        sw_version="1.2.3",
        desks=tuple(contract.DeskInfo(desk=d, unit=f"unit-{d}") for d in desks),
    )


async def desk_json(cloud: RunningCloud, desk: str) -> dict[str, object] | None:
    r = await cloud.http.get(f"/api/v1/desks/{desk}")
    return r.json() if r.status_code == 200 else None


async def node_json(cloud: RunningCloud, node: str) -> dict[str, object] | None:
    nodes = (await cloud.http.get("/api/v1/nodes")).json()
    return next((n for n in nodes if n["id"] == node), None)


async def test_birth_checkin_presence_show_up_in_the_api(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, desk = unique("node"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk])
    await publish(publisher, birth(node, [desk]))
    checkin_ts = recent(0)
    await publish(publisher, contract.CheckIn(node=node, desk=desk, badge=BADGE, ts=checkin_ts))
    await publish(publisher, contract.Presence(node=node, desk=desk, present=True))

    async def occupied_and_present() -> bool:
        d = await desk_json(cloud, desk)
        return d is not None and d["state"] == "occupied" and d["present"] is True

    await eventually(occupied_and_present)
    desks = (await cloud.http.get("/api/v1/desks")).json()
    listed = next(d for d in desks if d["id"] == desk)
    assert listed["node"] == node
    assert listed["occupant_badge"] == BADGE
    assert listed["checked_in_at"].startswith(iso(checkin_ts))
    assert listed["unit"] == f"unit-{desk}"
    n = await node_json(cloud, node)
    assert n is not None
    assert n["online"] is True and n["bdseq"] == 1 and n["sw_version"] == "1.2.3"
    assert n["desks"] == 1 and n["last_seen"] is not None


async def test_checkout_frees_the_desk_and_unit_status_is_recorded(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, desk = unique("node"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk])
    await publish(publisher, contract.CheckIn(node=node, desk=desk, badge=BADGE, ts=recent(10)))
    await publish(publisher, contract.CheckOut(node=node, desk=desk, badge=BADGE, ts=recent(20)))
    # Arrives late (e.g. queued): older than the checkout, so it must not re-occupy the desk.
    await publish(publisher, contract.CheckIn(node=node, desk=desk, badge=BADGE, ts=recent(15)))
    await publish(
        publisher, contract.UnitStatus(node=node, desk=desk, online=True, firmware="fw-7")
    )

    async def unit_reported() -> bool:
        d = await desk_json(cloud, desk)
        return d is not None and d["unit_online"] is True

    await eventually(unit_reported)
    d = await desk_json(cloud, desk)
    assert d is not None
    assert d["state"] == "free" and d["occupant_badge"] is None and d["unit_firmware"] == "fw-7"


async def test_replayed_event_is_applied_once(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, desk = unique("node"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk])
    checkin = contract.CheckIn(node=node, desk=desk, badge=BADGE)
    checkout = contract.CheckOut(node=node, desk=desk, badge=BADGE, ts=checkin.ts + 1)
    await publish(publisher, checkin)
    await publish(publisher, checkout)
    await publish(publisher, checkin)  # same message id: a replay, not a new check-in

    async def replay_seen() -> bool:
        return cloud.ingestor.stats.duplicates >= 1

    await eventually(replay_seen)
    d = await desk_json(cloud, desk)
    assert d is not None and d["state"] == "free"
    async with cloud.app.state.engine.connect() as conn:
        rows = await conn.scalar(
            select(func.count()).select_from(EVENTS).where(EVENTS.c.message_id == checkin.id)
        )
    assert rows == 1


async def test_death_with_current_bdseq_marks_offline_and_stale_death_does_not(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    current, stale = unique("node"), unique("node")
    await publish(publisher, birth(current, [], bdseq=3))
    await publish(publisher, birth(stale, [], bdseq=5))
    await publish(publisher, contract.NodeState(node=stale, online=False, bdseq=4))
    await publish(publisher, contract.NodeState(node=current, online=False, bdseq=3))

    async def current_offline() -> bool:
        n = await node_json(cloud, current)
        return n is not None and n["online"] is False

    await eventually(current_offline)
    # Both deaths were published before the current one was applied, in order.
    n = await node_json(cloud, stale)
    assert n is not None and n["online"] is True and n["bdseq"] == 5
    assert cloud.ingestor.stats.stale_deaths >= 1


async def test_telemetry_after_a_death_does_not_revive_the_node(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, desk = unique("node"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk])
    await publish(publisher, birth(node, [desk], bdseq=1))
    await publish(publisher, contract.NodeState(node=node, online=False, bdseq=1))
    await publish(publisher, contract.Heartbeat(node=node, desk=desk, uptime_s=5))
    marker = contract.Presence(node=node, desk=desk, present=True)
    await publish(publisher, marker)

    async def presence_applied() -> bool:
        d = await desk_json(cloud, desk)
        return d is not None and d["present"] is True

    await eventually(presence_applied)
    n = await node_json(cloud, node)
    assert n is not None and n["online"] is False


async def test_malformed_messages_are_counted_by_reason_and_the_next_good_one_applies(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, other, desk = unique("node"), unique("node"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk])
    good = contract.Presence(node=node, desk=desk, present=True)
    await publisher.publish(contract.telemetry_topic(node, "presence"), b"{not json", qos=1)
    await publisher.publish(
        contract.telemetry_topic(node, "presence"),
        contract.encode(contract.Presence(node=other, desk=desk, present=True)),
        qos=1,
    )
    await publisher.publish(contract.telemetry_topic(node, "smell"), contract.encode(good), qos=1)
    await publisher.publish(
        contract.event_topic(node, "checkin"),
        b'{"v":1,"id":"abcdefgh1","node":"%s","desk":"d1","badge":"xyz"}' % node.encode(),
        qos=1,
    )
    # Inside the cloud's subscription, outside the contract (bad node id).
    await publisher.publish("ruang/v1/nodes/bad node!/state", b"{}", qos=1)
    await publish(publisher, good)

    async def good_applied() -> bool:
        d = await desk_json(cloud, desk)
        return d is not None and d["present"] is True

    await eventually(good_applied)
    rejected = (await cloud.http.get("/api/v1/ingest/stats")).json()["rejected"]
    for reason in ("bad_json", "node_mismatch", "unknown_kind", "schema", "topic"):
        assert rejected.get(reason, 0) >= 1, (reason, rejected)


async def test_silent_node_is_marked_offline(
    settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    settings = settings.model_copy(update={"node_offline_after_s": 0.3})
    node = unique("node")
    async with start_cloud(settings) as cloud:
        await publish(publisher, birth(node, []))

        async def timed_out() -> bool:
            n = await node_json(cloud, node)
            return n is not None and n["online"] is False

        await eventually(timed_out)
        assert cloud.ingestor.stats.nodes_timed_out >= 1


async def test_events_published_while_the_cloud_was_down_arrive_after_restart(
    settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    node, desk = unique("node"), unique("desk")
    async with start_cloud(settings) as cloud:
        # The first run creates the persistent session and its subscriptions.
        await bind(cloud.app.state.engine, node, [desk])
    await publish(publisher, contract.CheckIn(node=node, desk=desk, badge=BADGE))
    async with start_cloud(settings) as cloud:

        async def delivered() -> bool:
            d = await desk_json(cloud, desk)
            return d is not None and d["state"] == "occupied"

        await eventually(delivered)


def test_reject_categories_are_stable() -> None:
    def reason(topic: str, payload: bytes) -> str:
        try:
            contract.decode(topic, payload)
        except contract.ContractError as exc:
            return exc.reason
        raise AssertionError("accepted")

    t = contract.telemetry_topic("n1", "presence")
    assert reject_category(reason(t, b"nope")) == "bad_json"
    assert reject_category(reason(t, b'{"node":"n1","desk":"d","present":"x"}')) == "schema"
    assert reject_category(reason(t, b'{"node":"n2","desk":"d","present":true}')) == "node_mismatch"
    assert reject_category(reason("ruang/v1/nodes/n1/telemetry/x", b"{}")) == "unknown_kind"
    assert reject_category(reason("elsewhere/topic", b"{}")) == "topic"


async def test_presence_changed_at_moves_only_when_presence_changes(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, desk = unique("node"), unique("desk")
    marker = unique("desk")
    await bind(cloud.app.state.engine, node, [desk, marker])

    async def presence_is(value: bool, after_received: int) -> None:
        async def applied() -> bool:
            d = await desk_json(cloud, desk)
            return (
                cloud.ingestor.stats.applied >= after_received
                and d is not None
                and d["present"] is value
            )

        await eventually(applied)

    await publish(publisher, contract.Presence(node=node, desk=desk, present=True, ts=recent(100)))
    await presence_is(True, 0)
    first = await desk_json(cloud, desk)
    baseline = cloud.ingestor.stats.applied
    await publish(publisher, contract.Presence(node=node, desk=desk, present=True, ts=recent(200)))
    # A marker on another desk: once it is applied, so is the repeat before it.
    await publish(
        publisher, contract.Presence(node=node, desk=marker, present=False, ts=recent(200))
    )

    async def marker_applied() -> bool:
        d = await desk_json(cloud, marker)
        return d is not None and d["present"] is False

    await eventually(marker_applied)
    repeat = await desk_json(cloud, desk)
    assert first is not None and repeat is not None
    assert repeat["presence_changed_at"] == first["presence_changed_at"]
    last_ts = recent(300)
    await publish(publisher, contract.Presence(node=node, desk=desk, present=False, ts=last_ts))
    await presence_is(False, baseline + 3)
    changed = await desk_json(cloud, desk)
    assert changed is not None and changed["presence_changed_at"].startswith(iso(last_ts))


async def _hold_write_lock(db: Path) -> sqlite3.Connection:
    """Takes SQLite's write lock beside the running cloud. Polled from the loop, not
    waited for in sqlite's busy handler: the cloud's jobs write often, and a blocked
    busy handler can lose every race to them (writer starvation)."""
    lock = sqlite3.connect(db, timeout=0, isolation_level=None)
    async with asyncio.timeout(120):
        while True:
            try:
                lock.execute("BEGIN IMMEDIATE")
                return lock
            except sqlite3.OperationalError:
                await asyncio.sleep(0.005)


async def test_event_is_acknowledged_to_the_broker_only_after_it_is_committed(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto, publisher: aiomqtt.Client
) -> None:
    db = tmp_path / "ack.sqlite3"
    settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{db}",
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-cloud-ack"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        flush_interval_s=0.05,
    )
    node, desk = unique("node"), unique("desk")
    lock = None
    async with start_cloud(settings) as cloud:
        await bind(cloud.app.state.engine, node, [desk])
        # Another writer holds SQLite's write lock: every commit the cloud tries fails.
        lock = await _hold_write_lock(db)
        await publish(publisher, contract.CheckIn(node=node, desk=desk, badge=BADGE))

        async def write_failed() -> bool:
            return cloud.ingestor.stats.write_errors >= 1

        # Bounded generously: the write queues behind the scheduled jobs' writes, each of
        # which also waits out SQLite's busy timeout against the held lock.
        await eventually(write_failed, within=60)
    # The cloud stopped without ever committing the check-in, so it never acked it
    # and the broker still holds it for the cloud's persistent session.
    lock.execute("ROLLBACK")
    lock.close()
    async with start_cloud(settings) as cloud:

        async def redelivered() -> bool:
            d = await desk_json(cloud, desk)
            return d is not None and d["state"] == "occupied"

        await eventually(redelivered)


async def test_clean_stop_acknowledges_what_it_stored_before_disconnecting(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto, publisher: aiomqtt.Client
) -> None:
    db = tmp_path / "stop.sqlite3"
    settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{db}",
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-cloud-stop"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        flush_interval_s=0.05,
    )
    node = unique("node")
    events = [contract.CheckIn(node=node, desk=unique("desk"), badge=BADGE) for _ in range(20)]
    async with start_cloud(settings) as cloud:
        # Hold SQLite's write lock so the events are received but not yet written...
        lock = await _hold_write_lock(db)
        received = cloud.ingestor.stats.received
        for event in events:
            await publish(publisher, event)

        async def pending() -> bool:
            stats = cloud.ingestor.stats
            return stats.received >= received + len(events) and stats.write_errors >= 1

        await eventually(pending, within=60)
        # ...then release it and stop at once: the last flush of stop() stores them.
        lock.execute("ROLLBACK")
        lock.close()
        await cloud.ingestor.stop()
        async with cloud.app.state.engine.connect() as conn:
            stored = await conn.scalar(
                select(func.count())
                .select_from(EVENTS)
                .where(EVENTS.c.message_id.in_([e.id for e in events]))
            )
        assert stored == len(events)

    # Reconnect with the cloud's session: the broker must have nothing of those to
    # redeliver. A marker published now arrives after any redelivery.
    marker = contract.CheckIn(node=node, desk=unique("desk"), badge=BADGE)
    redelivered: list[str] = []
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto_server.port, identifier=settings.mqtt_client_id, clean_session=False
    ) as client:
        await publish(publisher, marker)
        async for msg in client.messages:
            mid = contract.decode(msg.topic.value, msg.payload)[1].id  # type: ignore[arg-type]
            if mid == marker.id:
                break
            redelivered.append(mid)
    assert [mid for mid in redelivered if mid in {e.id for e in events}] == []
