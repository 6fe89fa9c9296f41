"""The edge agent against simulated desk units on real ptys and a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from edge.agent import EdgeAgent
from edge.devices.deskunit import DeskUnitConfig
from edge.settings import EdgeSettings
from firmware_bridge.deskunit import LedPattern
from launch import devservers
from ruang import contract
from simulators.floor import SimulatedFloor
from tests.helpers import eventually

pytestmark = pytest.mark.servers

BADGE = bytes.fromhex("04A1B2C3")
OTHER = bytes.fromhex("0411223344AABB")


@contextlib.asynccontextmanager
async def running(agent: EdgeAgent) -> AsyncIterator[EdgeAgent]:
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def watcher(broker_url: str, node: str) -> AsyncIterator[list[contract.Message]]:
    """Collects every contract message a node publishes."""
    port = int(broker_url.rsplit(":", 1)[1])
    seen: list[contract.Message] = []
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(f"{contract.TOPIC_ROOT}/nodes/{node}/#", qos=1)

        async def collect() -> None:
            async for msg in client.messages:
                seen.append(contract.decode(str(msg.topic), msg.payload)[1])  # type: ignore[arg-type]

        task = asyncio.create_task(collect())
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def settings_for(tmp_path: Path, node: str, url: str, floor: SimulatedFloor) -> EdgeSettings:
    return EdgeSettings(
        node_id=node,
        mqtt_url=url,
        state_dir=tmp_path / "edge",
        health_interval_s=0.5,
        desk_units=[DeskUnitConfig(desk=d, port=p) for d, p in floor.paths.items()],
    )


def of_type(seen: list[contract.Message], kind: type[contract.Message]) -> list[contract.Message]:
    return [m for m in seen if isinstance(m, kind)]


async def test_tap_lights_led_green_and_publishes_checkin_then_checkout(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    async with (
        SimulatedFloor(count=2) as floor,
        watcher(mosquitto_server.url, "edge-t1") as seen,
        running(EdgeAgent(settings_for(tmp_path, "edge-t1", mosquitto_server.url, floor))) as agent,
    ):
        await asyncio.wait_for(agent.uplink.connected.wait(), 10)
        desk, sim = next(iter(floor.sims.items()))
        await sim.tap(BADGE)
        await sim.wait_led(lambda led: led.pattern == LedPattern.SOLID and led.g > 0, timeout=5)
        await sim.tap(BADGE)
        await sim.wait_led(lambda led: led.pattern == LedPattern.OFF, timeout=5)

        async def both() -> bool:
            return bool(of_type(seen, contract.CheckIn)) and bool(of_type(seen, contract.CheckOut))

        await eventually(both, what="checkin and checkout on the broker")
        checkin = of_type(seen, contract.CheckIn)[0]
        assert checkin.desk == desk and checkin.badge == "04A1B2C3"  # type: ignore[attr-defined]


async def test_tap_by_other_badge_on_occupied_desk_blinks_red_and_reports_refusal(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    async with (
        SimulatedFloor(count=1) as floor,
        watcher(mosquitto_server.url, "edge-t2") as seen,
        running(EdgeAgent(settings_for(tmp_path, "edge-t2", mosquitto_server.url, floor))),
    ):
        sim = next(iter(floor.sims.values()))
        await sim.tap(BADGE)
        await sim.wait_led(lambda led: led.g > 0, timeout=5)
        await sim.tap(OTHER)
        led = await sim.wait_led(lambda led: led.pattern == LedPattern.BLINK, timeout=5)
        assert led.r > 0 and led.g == 0

        async def refused() -> list[contract.Message]:
            return of_type(seen, contract.TapRefused)

        (refusal,) = await eventually(refused, what="tap_refused event")
        assert refusal.badge == OTHER.hex().upper()  # type: ignore[attr-defined]


async def test_birth_lists_desks_and_units_report_hello_presence_and_health(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    async with (
        SimulatedFloor(count=3) as floor,
        watcher(mosquitto_server.url, "edge-t3") as seen,
        running(EdgeAgent(settings_for(tmp_path, "edge-t3", mosquitto_server.url, floor))),
    ):
        desk, sim = next(iter(floor.sims.items()))
        await sim.set_presence(True)

        async def all_there() -> bool:
            units = {m.desk for m in of_type(seen, contract.UnitStatus) if m.online}  # type: ignore[attr-defined]
            return (
                len(units) == 3
                and any(m.desk == desk and m.present for m in of_type(seen, contract.Presence))  # type: ignore[attr-defined]
                and bool(of_type(seen, contract.NodeHealth))
                and bool(of_type(seen, contract.NodeState))
            )

        await eventually(all_there, what="unit hellos, presence and health")
        birth = of_type(seen, contract.NodeState)[0]
        assert birth.online and {d.desk for d in birth.desks} == set(floor.sims)  # type: ignore[attr-defined]
        health = of_type(seen, contract.NodeHealth)[-1]
        assert health.rss_bytes > 0  # type: ignore[attr-defined]


async def test_unplugged_unit_is_reported_offline_while_other_desks_keep_working(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    async with (
        SimulatedFloor(count=2) as floor,
        watcher(mosquitto_server.url, "edge-t4") as seen,
        running(EdgeAgent(settings_for(tmp_path, "edge-t4", mosquitto_server.url, floor))),
    ):
        (gone_desk, gone), (_, kept) = floor.sims.items()

        async def hellos() -> bool:
            return len({m.desk for m in of_type(seen, contract.UnitStatus)}) == 2  # type: ignore[attr-defined]

        await eventually(hellos, what="both units online")
        await gone.close()

        async def offline() -> bool:
            return any(
                m.desk == gone_desk and not m.online  # type: ignore[attr-defined]
                for m in of_type(seen, contract.UnitStatus)
            )

        await eventually(offline, what="unit_status offline for the unplugged desk")
        await kept.tap(BADGE)
        await kept.wait_led(lambda led: led.g > 0, timeout=5)


async def test_events_queued_while_broker_is_down_are_delivered_after_it_returns(
    tmp_path: Path,
) -> None:
    with devservers.mosquitto() as broker:
        async with (
            SimulatedFloor(count=1) as floor,
            running(EdgeAgent(settings_for(tmp_path, "edge-t5", broker.url, floor))) as agent,
        ):
            await asyncio.wait_for(agent.uplink.connected.wait(), 10)
            broker.stop()
            await eventually(lambda: _not(agent.uplink.connected.is_set()), what="uplink down")
            sim = next(iter(floor.sims.values()))
            # Decided locally with no uplink: the LED still answers at once.
            await sim.tap(BADGE)
            await sim.wait_led(lambda led: led.g > 0, timeout=5)
            await agent.uplink.outbox.flushed()
            assert any(row.kind == "checkin" for row in agent.uplink.outbox.all_rows())
            async with watcher_after_restart(broker) as seen:

                async def delivered() -> bool:
                    return bool(of_type(seen, contract.CheckIn))

                await eventually(delivered, timeout=60, what="queued checkin delivered")
            assert agent.uplink.stats.reconnects >= 1


async def _not(value: bool) -> bool:
    return not value


@contextlib.asynccontextmanager
async def watcher_after_restart(
    broker: devservers.Mosquitto,
) -> AsyncIterator[list[contract.Message]]:
    broker.start()
    async with watcher(broker.url, "edge-t5") as seen:
        yield seen
