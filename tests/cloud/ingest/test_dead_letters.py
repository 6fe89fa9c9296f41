"""Poison messages: isolated by bisection, parked as dead letters, replayed or deleted by admins.

The SQL failure is a real one: a trigger in the test database refuses events for
desks named `poison-*`, the way a constraint or an out-of-range value would. Every
desk a test names is bound to its node (a layout) first: an unbound desk would be
refused by the bindings (cloud/ingest/bindings.py) before it could reach the trigger.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.engine import make_engine, migrate
from cloud.db.tables import EVENTS
from cloud.ingest.dead_letters import DEAD_LETTERS
from cloud.ingest.pipeline import Ingestor
from cloud.settings import CloudSettings
from cloud.telemetry.sinks import make_sink
from launch import devservers
from ruang import contract
from ruang.mqtt_wire import Incoming
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import RunningCloud, eventually, publish, start_cloud, unique
from tests.helpers import auth_headers

BADGE = "04A1B2C3D4E5F6"
_REFUSED = "poison desk refused by the test trigger"


async def install_poison_trigger(engine: AsyncEngine) -> None:
    """Events for desks named poison-* now fail in SQL (as a real constraint would)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION poison_guard() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.desk LIKE 'poison-%' THEN "
                    f"RAISE EXCEPTION '{_REFUSED}'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER poison_guard BEFORE INSERT ON events "
                    "FOR EACH ROW EXECUTE FUNCTION poison_guard()"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE TRIGGER poison_guard BEFORE INSERT ON events "
                    f"WHEN NEW.desk LIKE 'poison-%' BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END"
                )
            )


async def drop_poison_trigger(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("DROP TRIGGER poison_guard ON events"))
        else:
            await conn.execute(text("DROP TRIGGER poison_guard"))


def wire(message: contract.Message, qos: int = 0) -> Incoming:
    """The message as the session hands it to the ingestor (QoS 0: no broker ack involved)."""
    return Incoming(contract.topic_for(message), contract.encode(message), qos, 0)


async def stored_ids(engine: AsyncEngine, ids: list[str]) -> dict[str, int]:
    """How often each event was applied; one refused by the bindings does not count."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(EVENTS.c.message_id, func.count())
            .where(EVENTS.c.message_id.in_(ids), EVENTS.c.kind != "refused")
            .group_by(EVENTS.c.message_id)
        )
        return {mid: int(n) for mid, n in rows}


@pytest.fixture
async def engine(settings: CloudSettings) -> AsyncIterator[AsyncEngine]:
    await migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    await engine.dispose()


async def test_a_message_failing_in_sql_alone_is_bisected_out_and_its_batch_mates_applied(
    settings: CloudSettings, engine: AsyncEngine
) -> None:
    await install_poison_trigger(engine)
    sink = make_sink(settings)
    ingestor = Ingestor(settings, engine, sink)  # not started: this test drives flush()
    node = unique("node")
    now = time.time()
    good = [
        contract.CheckIn(node=node, desk=unique("desk"), badge=BADGE, ts=now - i) for i in range(7)
    ]
    poison = contract.CheckIn(node=node, desk=unique("poison"), badge=BADGE, ts=now)
    batch = [*good[:3], poison, *good[3:]]
    await bind(engine, node, [m.desk for m in batch])
    for message in batch:
        ingestor._on_message(wire(message))
    presence = contract.Presence(node=node, desk=good[0].desk, present=True, ts=now)
    ingestor._on_message(wire(presence))

    assert await ingestor.flush() is True  # one batch: fails, is bisected, the rest commits

    assert await stored_ids(engine, [m.id for m in batch]) == {m.id: 1 for m in good}
    assert ingestor.stats.isolations == 1 and ingestor.stats.dead_lettered == 1
    assert ingestor.stats.applied == len(good) + 1
    assert ingestor.stats.write_errors == 0  # the database was never down
    assert ingestor.stats.rejected == {}  # nothing refused: every desk is bound to the node
    async with engine.connect() as conn:
        letters = (await conn.execute(select(DEAD_LETTERS))).mappings().all()
    assert len(letters) == 1
    letter = letters[0]
    assert letter["message_id"] == poison.id and letter["node"] == node
    assert letter["topic"] == contract.topic_for(poison)
    assert letter["payload"] == contract.encode(poison)  # the raw bytes, for a replay
    assert _REFUSED in letter["reason"] and letter["attempts"] == 1

    # The node resends it (no event_ack reached it yet): one letter, one more attempt.
    ingestor._on_message(wire(poison))
    assert await ingestor.flush() is True
    async with engine.connect() as conn:
        attempts = await conn.scalar(select(DEAD_LETTERS.c.attempts))
    assert attempts == 2 and ingestor.stats.dead_lettered == 2
    await sink.close()


async def test_database_down_is_retried_not_dead_lettered(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    import sqlite3

    db = tmp_path / "down.sqlite3"
    settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{db}",
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-cloud-down"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        flush_interval_s=0.05,
    )
    await migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    sink = make_sink(settings)
    ingestor = Ingestor(settings, engine, sink)
    node = unique("node")
    events = [contract.CheckIn(node=node, desk=unique("desk"), badge=BADGE) for _ in range(3)]
    await bind(engine, node, [m.desk for m in events])
    for message in events:
        ingestor._on_message(wire(message))
    # Another writer holds SQLite's write lock: every write fails, the probe's too.
    lock = sqlite3.connect(db, timeout=0, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        assert await ingestor.flush() is False
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert ingestor.stats.dead_lettered == 0 and ingestor.stats.isolations == 0
    assert ingestor.stats.write_errors == 1
    assert await stored_ids(engine, [m.id for m in events]) == {}
    # The database is back: the same messages, kept in order, now commit.
    assert await ingestor.flush() is True
    assert await stored_ids(engine, [m.id for m in events]) == {m.id: 1 for m in events}
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(DEAD_LETTERS)) == 0
    await sink.close()
    await engine.dispose()


async def _letters(cloud: RunningCloud, **params: object) -> dict[str, object]:
    r = await cloud.http.get("/api/v1/dead-letters", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


async def test_poison_over_mqtt_is_parked_acked_and_replayed_by_an_admin(
    cloud: RunningCloud, publisher: aiomqtt.Client, settings: CloudSettings
) -> None:
    engine: AsyncEngine = cloud.app.state.engine
    await install_poison_trigger(engine)
    node = unique("node")
    await publisher.subscribe(contract.node_command_subscription(node), qos=1)
    before = contract.CheckIn(node=node, desk=unique("desk"), badge=BADGE)
    poison = contract.CheckIn(node=node, desk=unique("poison"), badge=BADGE)
    after = contract.CheckIn(node=node, desk=unique("desk"), badge=BADGE)
    await bind(engine, node, [before.desk, poison.desk, after.desk])
    for message in (before, poison, after):
        await publish(publisher, message)

    # The node is told all three are taken care of, the poison one included.
    acked: set[str] = set()
    async with asyncio.timeout(30):
        async for msg in publisher.messages:
            if msg.topic.value.endswith("/event_ack"):
                acked |= set(json.loads(bytes(msg.payload))["ids"])  # type: ignore[arg-type]
                if {before.id, poison.id, after.id} <= acked:
                    break
    assert await stored_ids(engine, [before.id, poison.id, after.id]) == {before.id: 1, after.id: 1}

    page = await _letters(cloud, node=node)
    assert page["total"] == 1
    (summary,) = page["items"]  # type: ignore[misc]
    assert summary["message_id"] == poison.id and summary["attempts"] == 1
    letter_id = summary["id"]
    assert (await _letters(cloud, node=unique("other")))["total"] == 0
    detail = (await cloud.http.get(f"/api/v1/dead-letters/{letter_id}")).json()
    import base64

    assert base64.b64decode(detail["payload_b64"]) == contract.encode(poison)

    fleet = (await cloud.http.get(f"/api/v1/fleet/nodes/{node}")).json()
    assert "dead_letters" in [r["code"] for r in fleet["reasons"]]
    assert fleet["state"] == "alarm"

    # Only admins see dead letters (raw payloads carry badge ids).
    technician = auth_headers(settings, subject="tech", roles=("technician",))
    r = await cloud.http.get("/api/v1/dead-letters", headers=technician)
    assert r.status_code == 403
    r = await cloud.http.post(f"/api/v1/dead-letters/{letter_id}/replay", headers=technician)
    assert r.status_code == 403

    # Replay while the cause is still there: refused again, one more attempt.
    r = await cloud.http.post(f"/api/v1/dead-letters/{letter_id}/replay")
    assert r.status_code == 200 and r.json()["replayed"] is False
    assert _REFUSED in r.json()["reason"]
    detail = (await cloud.http.get(f"/api/v1/dead-letters/{letter_id}")).json()
    assert detail["attempts"] == 2 and _REFUSED in detail["reason"]

    # Cause fixed: the replay applies it through the same pipeline and removes the letter.
    await drop_poison_trigger(engine)
    r = await cloud.http.post(f"/api/v1/dead-letters/{letter_id}/replay")
    assert r.status_code == 200 and r.json() == {
        "replayed": True,
        "duplicate": False,
        "reason": None,
    }
    assert await stored_ids(engine, [poison.id]) == {poison.id: 1}
    desk = (await cloud.http.get(f"/api/v1/desks/{poison.desk}")).json()
    assert desk["state"] == "occupied"
    assert (await cloud.http.get(f"/api/v1/dead-letters/{letter_id}")).status_code == 404
    assert (await cloud.http.post(f"/api/v1/dead-letters/{letter_id}/replay")).status_code == 404
    fleet = (await cloud.http.get(f"/api/v1/fleet/nodes/{node}")).json()
    assert "dead_letters" not in [r["code"] for r in fleet["reasons"]]


async def test_event_outside_the_clock_window_is_parked_and_the_node_flagged(
    cloud: RunningCloud, publisher: aiomqtt.Client, settings: CloudSettings
) -> None:
    node = unique("node")
    now = time.time()
    too_old = contract.CheckIn(
        node=node, desk=unique("desk"), badge=BADGE, ts=now - settings.ingest_max_age_s - 3600
    )
    ahead = contract.Presence(
        node=node, desk=unique("desk"), present=True, ts=now + settings.ingest_max_ahead_s + 3600
    )
    old_backlog = contract.CheckIn(
        node=node, desk=unique("desk"), badge=BADGE, ts=now - 20 * 86400
    )  # inside the 30-day window
    engine: AsyncEngine = cloud.app.state.engine
    # Bound, so the clock alone decides: too_old is parked, old_backlog applied.
    await bind(engine, node, [too_old.desk, ahead.desk, old_backlog.desk])
    await publish(publisher, too_old)
    await publish(publisher, ahead)
    await publisher.publish(
        contract.backlog_topic(node, "checkin"), contract.encode(old_backlog), qos=1
    )

    async def handled() -> bool:
        return (
            cloud.ingestor.stats.rejected.get("clock_skew", 0) >= 2
            and await stored_ids(cloud.app.state.engine, [old_backlog.id]) != {}
        )

    await eventually(handled)
    assert await stored_ids(engine, [too_old.id]) == {}
    page = await _letters(cloud, node=node)
    assert [i["message_id"] for i in page["items"]] == [too_old.id]  # type: ignore[attr-defined]
    assert "clock_skew" in page["items"][0]["reason"]  # type: ignore[index]
    fleet = (await cloud.http.get(f"/api/v1/fleet/nodes/{node}")).json()
    codes = [r["code"] for r in fleet["reasons"]]
    assert "clock_skew" in codes and "dead_letters" in codes
    assert fleet["online"] is True  # a wrong clock is an alarm, not an outage
    # A health report with a good clock clears the clock alarm.
    await publish(
        publisher,
        contract.NodeHealth(
            node=node, uptime_s=1, rss_bytes=1, rejected_frames=0, mqtt_reconnects=0, units_online=0
        ),
    )

    async def clock_alarm_cleared() -> bool:
        n = (await cloud.http.get(f"/api/v1/fleet/nodes/{node}")).json()
        return "clock_skew" not in [r["code"] for r in n["reasons"]]

    await eventually(clock_alarm_cleared)
    # Deleting the letter clears the other alarm.
    letter_id = page["items"][0]["id"]  # type: ignore[index]
    assert (await cloud.http.delete(f"/api/v1/dead-letters/{letter_id}")).status_code == 204
    assert (await cloud.http.delete(f"/api/v1/dead-letters/{letter_id}")).status_code == 404
    assert (await _letters(cloud, node=node))["total"] == 0


async def test_restarted_cloud_is_not_stuck_on_a_parked_message(
    settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    async with start_cloud(settings) as cloud:
        await install_poison_trigger(cloud.app.state.engine)
        node = unique("node")
        poison = contract.CheckIn(node=node, desk=unique("poison"), badge=BADGE)
        fresh = contract.CheckIn(node=node, desk=unique("desk"), badge=BADGE)
        await bind(cloud.app.state.engine, node, [poison.desk, fresh.desk])
        await publish(publisher, poison)

        async def parked() -> bool:
            return cloud.ingestor.stats.dead_lettered >= 1

        await eventually(parked)
    async with start_cloud(settings) as cloud:
        await publish(publisher, fresh)

        async def landed() -> bool:
            return await stored_ids(cloud.app.state.engine, [fresh.id]) == {fresh.id: 1}

        await eventually(landed)
        assert cloud.ingestor.stats.dead_lettered == 0  # the poison was not redelivered
