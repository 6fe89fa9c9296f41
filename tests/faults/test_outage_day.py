"""A 50-desk floor whose uplink is down for a whole (simulated) day, then comes back.

The day runs on an accelerated clock: every message carries its own timestamp
across 24 hours, and each 5-minute tick of the day is one group commit.

The second test runs the same day twice through the real cloud, into two fresh
databases: once with the uplink up all day, once with it down all day and the
outbox drained afterwards. The cloud's utilisation analytics for that day must
come out the same, number for number.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert

from cloud.db.models import Building, Desk, Floor, Node, Site, Zone
from edge.outbox_store import PRIORITY_BY_KIND
from edge.settings import EdgeSettings
from edge.uplink import Uplink
from launch import devservers
from ruang import contract
from ruang.backoff import Backoff
from tests.faults.support import Collector, background, running_cloud
from tests.helpers import eventually

pytestmark = pytest.mark.servers

NODE = "fault-day"
DESKS = [f"D{i:02d}" for i in range(50)]


def _recent_thursday() -> float:
    """00:00 UTC of a Thursday 2 to 8 days ago: the whole day is past, and inside the
    cloud's ingestion window (30 days back), as a real outage's backlog would be."""
    day = int(time.time() // 86_400) - 2
    return float((day - day % 7) * 86_400)  # day 0 (1970-01-01) was a Thursday


DAY0 = _recent_thursday()
TICK_S = 300


def floor_day() -> list[list[contract.Message]]:
    """Per 5-minute tick, what the floor produced: heartbeats, presence, check-ins/outs."""
    rng = random.Random(5)
    plans = {}
    for desk in DESKS:
        arrive = rng.randrange(7 * 3600, 10 * 3600, TICK_S)
        lunch = rng.randrange(12 * 3600, 13 * 3600, TICK_S)
        leave = rng.randrange(16 * 3600, 19 * 3600, TICK_S)
        plans[desk] = (arrive, lunch, lunch + 3600, leave, f"04A1B2{DESKS.index(desk):02X}")
    ticks: list[list[contract.Message]] = []
    for t in range(0, 86_400, TICK_S):
        ts = DAY0 + t
        tick: list[contract.Message] = []
        for desk, (arrive, out, back, leave, badge) in plans.items():
            if t == arrive:
                tick.append(contract.Presence(node=NODE, desk=desk, present=True, ts=ts))
                tick.append(contract.CheckIn(node=NODE, desk=desk, badge=badge, ts=ts))
            elif t in (out, back):
                tick.append(contract.Presence(node=NODE, desk=desk, present=t == back, ts=ts))
            elif t == leave:
                tick.append(contract.Presence(node=NODE, desk=desk, present=False, ts=ts))
                tick.append(contract.CheckOut(node=NODE, desk=desk, badge=badge, ts=ts))
            tick.append(contract.Heartbeat(node=NODE, desk=desk, uptime_s=t, ts=ts))
        ticks.append(tick)
    return ticks


async def _ignore(_: contract.Message) -> None:
    return None


def day_uplink(tmp_path: Path, mqtt_url: str) -> Uplink:
    """The floor node's uplink, draining its backlog as fast as the test can take it."""
    return Uplink(
        EdgeSettings(
            node_id=NODE,
            mqtt_url=mqtt_url,
            state_dir=tmp_path / "edge",
            backlog_default_rate=50_000,
        ),
        birth=lambda b: contract.NodeState(node=NODE, online=True, bdseq=b),
        on_command=_ignore,
        backoff=Backoff(base=0.1, cap=1.0),
    )


async def test_a_day_offline_is_kept_whole_and_drains_by_priority_with_live_data_first(
    tmp_path: Path,
) -> None:
    day = floor_day()
    sent = [m for tick in day for m in tick]
    # Time-based autosave, as in the broker-restart test: with a save per change the
    # broker rewrites its whole store for every message queued for the collector, so
    # an edge draining faster than the collector reads made each save longer than
    # the last. The store is still written when the broker is stopped.
    broker_conf = "autosave_on_changes false\nautosave_interval 1"
    with devservers.mosquitto(broker_conf, persistence=True) as broker:
        seen = Collector(broker.port, NODE)
        async with background(seen.run()):
            await asyncio.wait_for(seen.ready.wait(), 10)
            broker.stop()
            uplink = day_uplink(tmp_path, broker.url)
            async with background(uplink.run()):
                for tick in day:
                    for message in tick:
                        uplink.publish(message)
                    await uplink.outbox.flushed()
                # The whole day fits the default disk bound: nothing shed, no alarm.
                assert uplink.queued == len(sent)
                assert uplink.outbox.dropped_telemetry == 0 and uplink.outbox.alarm is None

                broker.start()
                await asyncio.wait_for(uplink.connected.wait(), 30)
                live = contract.CheckIn(node=NODE, desk="D00", badge="04A1B2FF")
                uplink.publish(live)

                async def all_there() -> bool:
                    return {m.id for m in sent} | {live.id} <= set(seen.ids)

                await eventually(all_there, timeout=60, what="the whole day at the subscriber")

    first: dict[str, tuple[int, str, str]] = {}
    for at, (channel, kind, ident) in enumerate(seen.seen):
        first.setdefault(ident, (at, channel, kind))
    # The day came back as backlog; the live check-in on its own channel, ahead of it.
    assert all(first[m.id][1] == contract.Channel.BACKLOG for m in sent)
    assert first[live.id][1] == contract.Channel.EVENTS
    assert first[live.id][0] < max(first[m.id][0] for m in sent)
    # Strictly by priority (check-ins/outs, then presence, then heartbeats), and within
    # each kind in the day's own order.
    backlog = sorted((first[m.id][0], m) for m in sent)
    priorities = [PRIORITY_BY_KIND[contract.kind_of(m)] for _, m in backlog]
    assert priorities == sorted(priorities)
    for kind in ("checkin", "checkout", "presence", "heartbeat"):
        arrived = [m.id for _, m in backlog if contract.kind_of(m) == kind]
        assert arrived == [m.id for m in sent if contract.kind_of(m) == kind]


def _seed_floor(db_path: Path) -> None:
    """The day's 50 desks in the cloud's database, so analytics has a floor to group by."""
    # The running cloud writes to the same file (its start-up, the write probe): wait
    # for its lock as the cloud's own connections do, instead of sqlite's 5 s default.
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": 60})
    try:
        with engine.begin() as conn:
            conn.execute(insert(Node), [{"id": NODE, "online": False}])
            conn.execute(insert(Site), [{
                "id": "S", "name": "Site", "timezone": "UTC", "max_booking_hours": 10,
                "max_days_ahead": 14, "one_desk_per_person_per_slot": False,
                "checkin_grace_min": 15, "away_release_min": 30,
            }])  # fmt: skip
            conn.execute(insert(Building), [{"id": "B", "site_id": "S", "name": "B"}])
            conn.execute(insert(Floor), [{"id": "F", "building_id": "B", "level": 1, "name": "F"}])
            conn.execute(insert(Zone), [{"id": "Z", "floor_id": "F", "name": "Z"}])
            conn.execute(insert(Desk), [
                {"id": d, "node_id": NODE, "state": "free", "floor_id": "F", "zone_id": "Z",
                 "mode": "reservable", "features": []}
                for d in DESKS
            ])  # fmt: skip
    finally:
        engine.dispose()


def _stored_checkins(db_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(db_path, timeout=10)) as db:
        (n,) = db.execute(
            "SELECT count(*) FROM events WHERE node = ? AND kind IN ('checkin', 'checkout')",
            (NODE,),
        ).fetchone()
    return int(n)


async def _utilisation_of_the_day(tmp_path: Path, *, outage: bool) -> list[dict[str, Any]]:
    """Runs the day through an uplink into a fresh cloud; returns the day's utilisation rows."""
    day = floor_day()
    desk_events = sum(
        1 for tick in day for m in tick if isinstance(m, contract.CheckIn | contract.CheckOut)
    )
    with devservers.mosquitto() as broker:
        async with running_cloud(tmp_path, broker.url) as cloud:
            # In a thread: the cloud runs on this loop, and may hold the write lock until
            # the loop lets it commit.
            await asyncio.to_thread(_seed_floor, cloud.db_path)
            uplink = day_uplink(tmp_path, broker.url)

            async def feed() -> None:
                for tick in day:
                    for message in tick:
                        uplink.publish(message)
                    await uplink.outbox.flushed()

            if outage:
                # Down the whole day: everything waits in the outbox, then drains as backlog.
                await feed()
                assert uplink.queued == sum(len(t) for t in day)
                async with background(uplink.run()):
                    await _settled(uplink, cloud.db_path, desk_events)
            else:
                async with background(uplink.run()):
                    await asyncio.wait_for(uplink.connected.wait(), 30)
                    await feed()
                    await _settled(uplink, cloud.db_path, desk_events)
            uplink.outbox.close()
            start = datetime.fromtimestamp(DAY0, UTC)
            end = datetime.fromtimestamp(DAY0 + 86_400, UTC)
            rows: list[dict[str, Any]] = []
            for level, bucket in (("desk", "day"), ("floor", "hour")):
                response = await cloud.client.get(
                    "/api/v1/analytics/utilisation",
                    params={"from": start.isoformat(), "to": end.isoformat(),
                            "level": level, "bucket": bucket},
                )  # fmt: skip
                response.raise_for_status()
                rows += response.json()["rows"]
            return rows


async def _settled(uplink: Uplink, db_path: Path, desk_events: int) -> None:
    async def done() -> bool:
        # Every event acknowledged by the cloud, i.e. committed there.
        stored = await asyncio.to_thread(_stored_checkins, db_path)
        return stored == desk_events and uplink.queued == 0 and uplink.outbox.awaiting_ack == 0

    await eventually(done, timeout=60, interval=0.2, what="the day committed in the cloud")


async def test_utilisation_after_a_day_offline_equals_the_one_with_no_outage(
    tmp_path: Path,
) -> None:
    live = await _utilisation_of_the_day(tmp_path / "live", outage=False)
    drained = await _utilisation_of_the_day(tmp_path / "outage", outage=True)
    assert live and any(r["occupied_hours"] > 0 for r in live)
    assert drained == live
