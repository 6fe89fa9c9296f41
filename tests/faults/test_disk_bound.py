"""Broker down, outbox past its disk bound: telemetry shed oldest first, events all delivered."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.settings import EdgeSettings
from launch import devservers
from ruang import contract
from tests.faults.support import Collector, background
from tests.helpers import eventually

pytestmark = pytest.mark.servers

NODE = "fault-disk"
BOUND_MB = 0.05  # 50,000 bytes of payload plus per-row overhead


async def _true(value: bool) -> bool:
    return value


async def test_full_outbox_sheds_oldest_telemetry_keeps_every_event_and_raises_the_alarm(
    tmp_path: Path,
) -> None:
    with devservers.mosquitto(persistence=True) as broker:
        seen = Collector(broker.port, NODE)
        async with background(seen.run()):
            await asyncio.wait_for(seen.ready.wait(), 10)
            # The subscriber's session (persistence on) outlives the outage.
            broker.stop()
            agent = EdgeAgent(
                EdgeSettings(
                    node_id=NODE,
                    mqtt_url=broker.url,
                    state_dir=tmp_path / "edge",
                    outbox_max_mb=BOUND_MB,
                    health_interval_s=3600,
                    backlog_default_rate=50_000,
                    # The subscriber here is no cloud and sends no event_ack: delete at
                    # PUBACK, so the emptied outbox clears the alarm (docs/edge-outbox.md).
                    event_ack_timeout_s=0,
                )
            )
            outbox = agent.uplink.outbox
            async with background(agent.run()):
                # 1. Telemetry alone past the bound: the oldest heartbeats go first.
                beats = [
                    contract.Heartbeat(node=NODE, desk=f"D{i % 50:02d}", uptime_s=i)
                    for i in range(600)
                ]
                for beat in beats:
                    agent.uplink.publish(beat)
                await outbox.flushed()
                assert outbox.dropped_telemetry > 0
                kept = [json.loads(r.payload)["id"] for r in outbox.all_rows()]
                assert kept == [b.id for b in beats[-len(kept) :]]  # a suffix: newest kept
                assert outbox.size_bytes <= outbox.max_bytes
                assert agent.health().alarms == ()  # shedding telemetry is no alarm

                # 2. Events past the bound: every telemetry row goes, every event stays.
                events: list[contract.Message] = []
                for i in range(400):
                    desk = f"D{i % 50:02d}"
                    events.append(
                        contract.CheckIn(node=NODE, desk=desk, badge="04A1B2C3")
                        if i % 2 == 0
                        else contract.ButtonPressed(node=NODE, desk=desk, button=1)
                    )
                    agent.uplink.publish(events[-1])
                    agent.uplink.publish(contract.Presence(node=NODE, desk=desk, present=True))
                await outbox.flushed()
                rows = outbox.all_rows()
                assert all(r.is_event for r in rows)
                assert {json.loads(r.payload)["id"] for r in rows} == {e.id for e in events}
                health = agent.health()
                assert "outbox full" in health.alarms
                assert health.dropped_telemetry == outbox.dropped_telemetry == 600 + 400
                assert health.outbox_depth == len(events)
                assert not agent.uplink.connected.is_set()

                # 3. The broker returns: every event is delivered, the alarm clears.
                broker.start()

                async def delivered() -> bool:
                    return {e.id for e in events} <= set(seen.ids)

                await eventually(delivered, timeout=60, what="every kept event delivered")
                await eventually(
                    lambda: _true(agent.uplink.queued == 0), what="outbox emptied by acks"
                )
                await outbox.flushed()
                assert agent.health().alarms == ()
