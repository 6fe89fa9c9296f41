"""Events commit first, in their own transaction; the telemetry they need not wait for after.

Pins cloud/ingest/events_first.py and its use in `Ingestor.flush`: a node's (and
a desk's) telemetry received before its event stays before it, in the event's
transaction; other nodes' telemetry goes to a second one. Acks follow what they
acknowledge; a failure of either transaction is isolated or retried as before,
and the events are stored once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.engine import make_engine, migrate
from cloud.db.tables import DESKS, PRESENCE_CHANGES
from cloud.ingest import events_first
from cloud.ingest.items import Envelope, Item, TelemetryBatch
from cloud.ingest.pipeline import Ingestor
from cloud.mqtt.session import Held
from cloud.settings import CloudSettings
from cloud.telemetry.sinks import make_sink
from ruang import contract
from ruang.mqtt_wire import Incoming
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import unique
from tests.cloud.ingest.test_dead_letters import stored_ids

BADGE = "04A1B2C3D4E5F6"
TS = 1_750_000_000.0


def env(msg: contract.Message) -> Envelope:
    parsed = contract.ParsedTopic(msg.node, contract.Channel.EVENTS, contract.kind_of(msg))
    return Envelope(parsed, msg, TS)


def batch(*samples: tuple[str, str, bool], backlog: bool = False) -> TelemetryBatch:
    """Presence samples (node, desk, present), live or drained from an outbox."""
    out = TelemetryBatch()
    for node, desk, present in samples:
        if backlog:
            out.backlog_presence.setdefault(desk, []).append((node, present, TS))
            continue
        out.count += 1
        out.counts[node] = out.counts.get(node, 0) + 1
        out.seen[node] = TS
        out.presence[desk] = (node, present, TS)
    return out


def desks(item: Item) -> list[str]:
    """The desks an item speaks of: a batch's presence samples, an event's desk."""
    if isinstance(item, TelemetryBatch):
        return sorted(item.presence)
    return [getattr(item.message, "desk", "")]


def test_a_flush_without_events_is_one_transaction_as_before() -> None:
    items: list[Item] = [batch(("node-x", "X1", True))]
    assert events_first.split(items) == ([], items)


def test_splitting_knows_every_field_of_a_telemetry_batch() -> None:
    # `_divide`, `_empty` and `merge` name each field: a field added to TelemetryBatch
    # without them would be silently dropped from one of the two transactions.
    handled = {"count", "counts", "seen", "presence", "rooms", "health", "devices",
               "backlog_presence"}  # fmt: skip
    assert {f.name for f in dataclasses.fields(TelemetryBatch)} == handled


def test_events_come_first_with_only_the_telemetry_of_their_nodes_and_desks() -> None:
    checkin = env(contract.CheckIn(node="node-a", desk="A1", badge=BADGE, ts=TS))
    # node-c names desk A1 (a desk moved between nodes, say): it stays before the check-in.
    before = batch(("node-a", "A2", True), ("node-x", "X1", True), ("node-c", "A1", False))
    before.rooms["RX"] = ("node-x", True, TS, None)
    after = batch(("node-x", "X1", False), ("node-x", "X2", True), ("node-a", "A2", False))

    first, rest = events_first.split([before, checkin, after])

    assert len(first) == 2 and first[1] is checkin
    kept = first[0]
    assert isinstance(kept, TelemetryBatch)
    assert kept.presence == {"A2": ("node-a", True, TS), "A1": ("node-c", False, TS)}
    assert set(kept.seen) == {"node-a"} and kept.count == 1 and kept.rooms == {}
    (moved,) = rest
    assert isinstance(moved, TelemetryBatch)
    # Merged in arrival order: the later sample of a desk wins, as coalescing would have it.
    # (A1 is not among them: kept before the event that names it.)
    assert moved.presence == {
        "X1": ("node-x", False, TS),
        "X2": ("node-x", True, TS),
        "A2": ("node-a", False, TS),
    }
    assert moved.rooms == {"RX": ("node-x", True, TS, None)}
    # Every sample is counted once, in one part or the other.
    assert kept.count + moved.count == before.count + after.count


def test_each_event_keeps_the_telemetry_of_its_own_node_that_came_before_it() -> None:
    a_in = env(contract.CheckIn(node="node-a", desk="A1", badge=BADGE, ts=TS))
    b_in = env(contract.CheckIn(node="node-b", desk="B1", badge=BADGE, ts=TS))
    t1 = batch(("node-a", "A2", True), ("node-b", "B2", True), ("node-x", "X1", True))
    t2 = batch(("node-a", "A2", False), ("node-b", "B2", False), ("node-x", "X1", False))

    first, rest = events_first.split([t1, a_in, t2, b_in])

    # node-b's samples of t1 and t2 precede b's check-in; node-a's of t2 come after
    # a's last event, so they wait with node-x's.
    assert [desks(i) for i in first] == [["A2", "B2"], ["A1"], ["B2"], ["B1"]]
    (moved,) = rest
    assert isinstance(moved, TelemetryBatch)
    assert moved.presence == {"X1": ("node-x", False, TS), "A2": ("node-a", False, TS)}


def test_backlog_presence_of_an_event_node_stays_before_its_event() -> None:
    checkin = env(contract.CheckIn(node="node-a", desk="A1", badge=BADGE, ts=TS))
    drained = batch(("node-a", "A1", True), ("node-x", "X1", True), backlog=True)

    first, rest = events_first.split([drained, checkin])

    assert isinstance(first[0], TelemetryBatch) and first[1] is checkin
    assert first[0].backlog_presence == {"A1": [("node-a", True, TS)]}
    assert isinstance(rest[0], TelemetryBatch)
    assert rest[0].backlog_presence == {"X1": [("node-x", True, TS)]}


# --- through the ingestor, on both databases -------------------------------------------


@pytest.fixture
async def engine(settings: CloudSettings) -> AsyncIterator[AsyncEngine]:
    await migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    await engine.dispose()


class Recorder:
    """What an Ingestor did after each commit, in order: desks told to listeners, PUBACKs."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.log: list[tuple[str, object]] = []
        ingestor.on_desks_changed = lambda desks: self.log.append(("desks", set(desks)))
        ingestor.session.ack = self._puback  # type: ignore[method-assign]

    def _puback(self, held: Held) -> None:
        if held.mids:  # an empty one sends nothing
            self.log.append(("puback", list(held.mids)))


def receive(ingestor: Ingestor, message: contract.Message, mid: int = 0, topic: str = "") -> None:
    """Hands `message` over as the session does; with `mid`, as a held QoS 1 message."""
    topic = topic or contract.topic_for(message)
    ingestor.session._received(Incoming(topic, contract.encode(message), 1 if mid else 0, mid))


async def present(engine: AsyncEngine, desk: str) -> tuple[bool | None, str | None]:
    """(present, state) of a desk as stored."""
    async with engine.connect() as conn:
        query = select(DESKS.c.present, DESKS.c.state).where(DESKS.c.id == desk)
        row = (await conn.execute(query)).one()
    return row.present, row.state


async def test_a_checkin_commits_and_is_acked_before_other_nodes_telemetry_received_before_it(
    settings: CloudSettings, engine: AsyncEngine
) -> None:
    node, other = unique("node"), unique("node")
    own, desk = unique("desk"), unique("desk")
    others = [unique("desk") for _ in range(20)]
    await bind(engine, node, [own, desk])
    await bind(engine, other, others)
    sink = make_sink(settings)
    ingestor = Ingestor(settings, engine, sink)  # not started: this test drives flush()
    recorder = Recorder(ingestor)
    now = time.time()
    for d in others:
        receive(ingestor, contract.Presence(node=other, desk=d, present=True, ts=now))
    receive(ingestor, contract.Presence(node=node, desk=own, present=True, ts=now))
    checkin = contract.CheckIn(node=node, desk=desk, badge=BADGE, ts=now)
    receive(ingestor, checkin, mid=7)
    receive(ingestor, contract.Presence(node=other, desk=others[0], present=False, ts=now))

    assert await ingestor.flush() is True

    # The check-in's transaction held its own node's presence and nothing of the other's;
    # its PUBACK went out before the other node's telemetry was written.
    assert recorder.log == [("desks", {own, desk}), ("puback", [7]), ("desks", set(others))]
    assert await present(engine, desk) == (None, "occupied")
    assert await present(engine, own) == (True, "free")
    assert await present(engine, others[0]) == (False, "free")
    assert await present(engine, others[1]) == (True, "free")
    assert ingestor.stats.applied == len(others) + 3
    await sink.close()


async def install_presence_poison(engine: AsyncEngine) -> None:
    """Presence for desks named poison-* now fails in SQL."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION presence_poison() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.id LIKE 'poison-%' THEN RAISE EXCEPTION 'poison presence'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER presence_poison BEFORE UPDATE OF present ON desks "
                    "FOR EACH ROW EXECUTE FUNCTION presence_poison()"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE TRIGGER presence_poison BEFORE UPDATE OF present ON desks "
                    "WHEN NEW.id LIKE 'poison-%' BEGIN SELECT RAISE(ABORT, 'poison presence'); END"
                )
            )


async def test_telemetry_failing_in_its_own_transaction_is_dropped_and_the_event_kept(
    settings: CloudSettings, engine: AsyncEngine
) -> None:
    await install_presence_poison(engine)
    node, other = unique("node"), unique("node")
    desk, poison = unique("desk"), unique("poison")
    await bind(engine, node, [desk])
    await bind(engine, other, [poison])
    sink = make_sink(settings)
    ingestor = Ingestor(settings, engine, sink)
    now = time.time()
    receive(ingestor, contract.Presence(node=other, desk=poison, present=True, ts=now))
    checkin = contract.CheckIn(node=node, desk=desk, badge=BADGE, ts=now)
    receive(ingestor, checkin)

    assert await ingestor.flush() is True

    assert await stored_ids(engine, [checkin.id]) == {checkin.id: 1}
    assert ingestor.stats.isolations == 1 and ingestor.stats.telemetry_dropped == 1
    assert ingestor.stats.dead_lettered == 0 and ingestor.stats.write_errors == 0
    assert await present(engine, poison) == (None, "free")
    await sink.close()


async def test_database_down_after_the_events_committed_keeps_the_rest_for_the_next_flush(
    settings: CloudSettings, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, other = unique("node"), unique("node")
    desk, elsewhere = unique("desk"), unique("desk")
    await bind(engine, node, [desk])
    await bind(engine, other, [elsewhere])
    sink = make_sink(settings)
    ingestor = Ingestor(settings, engine, sink)
    recorder = Recorder(ingestor)
    isolation = ingestor._isolation
    commit, writable = isolation._commit, isolation.database_writable

    async def down_for_telemetry(items: list[Item]) -> object:
        # The database goes away between the two transactions of the flush.
        if not any(isinstance(i, Envelope) for i in items):
            raise OperationalError("COMMIT", {}, Exception("database is gone"))
        return await commit(items)

    async def unwritable() -> bool:
        return False

    monkeypatch.setattr(isolation, "_commit", down_for_telemetry)
    monkeypatch.setattr(isolation, "database_writable", unwritable)
    now = time.time()
    # A sample drained from an outbox (QoS 1): its PUBACK waits for its transaction.
    drained = contract.Presence(node=other, desk=elsewhere, present=True, ts=now - 60)
    receive(ingestor, drained, mid=3, topic=contract.backlog_topic(other, "presence"))
    receive(ingestor, contract.Presence(node=other, desk=elsewhere, present=True, ts=now))
    checkin = contract.CheckIn(node=node, desk=desk, badge=BADGE, ts=now)
    receive(ingestor, checkin, mid=4)

    assert await ingestor.flush() is False
    assert await stored_ids(engine, [checkin.id]) == {checkin.id: 1}
    assert recorder.log == [("desks", {desk})]  # no PUBACK: the drained sample is not stored
    assert ingestor.stats.write_errors == 1 and ingestor.stats.dead_lettered == 0

    monkeypatch.setattr(isolation, "_commit", commit)
    monkeypatch.setattr(isolation, "database_writable", writable)
    assert await ingestor.flush() is True

    assert recorder.log[1:] == [("desks", {elsewhere}), ("puback", [3, 4])]
    assert await stored_ids(engine, [checkin.id]) == {checkin.id: 1}  # once, not again
    assert await present(engine, elsewhere) == (True, "free")
    async with engine.connect() as conn:
        history = (
            await conn.execute(
                select(PRESENCE_CHANGES.c.present).where(PRESENCE_CHANGES.c.desk_id == elsewhere)
            )
        ).all()
    assert history  # the drained sample reached the sensed history
    await sink.close()
