"""Presence drained from an outbox (backlog channel) fills `presence_changes`, over the broker.

Pins: historic samples become rows in time order whatever order (and batches) they
arrive in, and the sensed intervals read from them are the outage's; a replayed
backlog adds nothing; the desk's live state (present, presence_changed_at) is never
moved back by older samples.
"""

from __future__ import annotations

import time
from datetime import datetime

import aiomqtt
from sqlalchemy import select

from cloud.analytics.history import intervals_from_marks
from cloud.db.tables import DESKS, PRESENCE_CHANGES
from cloud.db.timestamps import utc
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import RunningCloud, eventually, publish, unique


async def _history(cloud: RunningCloud, desk: str) -> list[tuple[int, datetime, bool]]:
    async with cloud.app.state.engine.connect() as conn:
        rows = await conn.execute(
            select(PRESENCE_CHANGES.c.id, PRESENCE_CHANGES.c.ts, PRESENCE_CHANGES.c.present)
            .where(PRESENCE_CHANGES.c.desk_id == desk)
            .order_by(PRESENCE_CHANGES.c.ts)
        )
        return [(r.id, r.ts, bool(r.present)) for r in rows]


async def _desk(cloud: RunningCloud, desk: str) -> tuple[bool | None, datetime | None]:
    async with cloud.app.state.engine.connect() as conn:
        row = (
            await conn.execute(
                select(DESKS.c.present, DESKS.c.presence_changed_at).where(DESKS.c.id == desk)
            )
        ).one()
        return row.present, row.presence_changed_at


async def _drain(
    cloud: RunningCloud, client: aiomqtt.Client, samples: list[contract.Presence], marker: str
) -> None:
    """Publishes `samples` on the backlog channel and waits until they are committed.

    A last sample for the `marker` desk (same node, same topic, so it is delivered
    after them) shows in its history once everything before it was written.
    """
    node = samples[0].node
    marked = len(await _history(cloud, marker))
    # Its value alternates, so each marker sample is a change and lands one row.
    sentinel = contract.Presence(
        node=node, desk=marker, present=marked % 2 == 0, ts=time.time() - 10
    )
    for sample in [*samples, sentinel]:
        await client.publish(
            contract.backlog_topic(sample.node, "presence"), contract.encode(sample), qos=1
        )

    async def committed() -> bool:
        return len(await _history(cloud, marker)) > marked

    await eventually(committed)


async def test_backlog_presence_fills_the_sensed_history_in_order_and_replays_idempotently(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, desk, marker = unique("node"), unique("desk"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk, marker])
    now = time.time()
    live = contract.Presence(node=node, desk=desk, present=True, ts=now - 60)
    await publish(publisher, live)

    async def live_applied() -> bool:
        return (await _desk(cloud, desk))[0] is True

    await eventually(live_applied)
    state = await _desk(cloud, desk)
    assert state == (True, utc(now - 60))

    def sample(present: bool, ago: float) -> contract.Presence:
        return contract.Presence(node=node, desk=desk, present=present, ts=now - ago)

    # An outage of the last four hours, drained out of order and in two flushes: the
    # change at -3 h comes last, after the samples around it were stored.
    backlog = [
        sample(False, 3600),
        sample(True, 2 * 3600 - 1),  # a repeat of the -2 h sample
        sample(True, 2 * 3600),
        sample(True, 4 * 3600),
        sample(False, 3 * 3600),
    ]
    await _drain(cloud, publisher, backlog[:4], marker)
    await _drain(cloud, publisher, backlog[4:], marker)
    expected = [
        (utc(now - 4 * 3600), True),
        (utc(now - 3 * 3600), False),
        (utc(now - 2 * 3600), True),
        (utc(now - 2 * 3600 + 1), True),
        (utc(now - 3600), False),
        (utc(now - 60), True),  # the live change stays last
    ]
    first = await _history(cloud, desk)
    assert [(ts, present) for _, ts, present in first] == expected
    end = utc(now)
    sensed = intervals_from_marks([(ts, p) for _, ts, p in first], utc(now - 86400), end)
    assert sensed == [
        (utc(now - 4 * 3600), utc(now - 3 * 3600)),
        (utc(now - 2 * 3600), utc(now - 3600)),
        (utc(now - 60), end),
    ]
    assert await _desk(cloud, desk) == state  # the live state did not go back in time

    # The node resends its whole outbox (after a lost ack), in another order.
    await _drain(cloud, publisher, list(reversed(backlog)) + backlog[:2], marker)
    assert await _history(cloud, desk) == first  # same rows, same ids: nothing duplicated
    assert await _desk(cloud, desk) == state


async def test_backlog_of_an_outage_ends_the_sensed_interval_before_a_later_live_change(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, desk, marker = unique("node"), unique("desk"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk, marker])
    now = time.time()
    for present, ago in ((True, 7200), (False, 60)):
        live = contract.Presence(node=node, desk=desk, present=present, ts=now - ago)
        await publish(publisher, live)  # one at a time: live samples coalesce

        async def live_applied() -> bool:
            return (await _desk(cloud, desk))[0] is live.present  # noqa: B023

        await eventually(live_applied)
    # During the outage the desk was left at -1 h; the live "false" at -60 s came after.
    await _drain(
        cloud,
        publisher,
        [contract.Presence(node=node, desk=desk, present=False, ts=now - 3600)],
        marker,
    )
    history = [(ts, present) for _, ts, present in await _history(cloud, desk)]
    assert history == [(utc(now - 7200), True), (utc(now - 3600), False), (utc(now - 60), False)]
    sensed = intervals_from_marks(history, utc(now - 86400), utc(now))
    assert sensed == [(utc(now - 7200), utc(now - 3600))]  # not until -60 s
    assert await _desk(cloud, desk) == (False, utc(now - 60))


async def test_backlog_presence_of_a_desk_the_node_does_not_serve_is_refused(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, other, desk = unique("node"), unique("node"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk])
    stats = cloud.ingestor.stats
    before = sum(stats.rejected.values())
    sample = contract.Presence(node=other, desk=desk, present=True, ts=time.time() - 600)
    await publisher.publish(
        contract.backlog_topic(other, "presence"), contract.encode(sample), qos=1
    )

    async def refused() -> bool:
        return sum(stats.rejected.values()) > before

    await eventually(refused)
    assert await cloud.ingestor.flush()
    assert await _history(cloud, desk) == []
