"""Remote config over a real Mosquitto: refused, applied in place, ignored when old, persisted."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edge.agent import EdgeAgent
from edge.devices.deskunit import DeskUnitConfig
from edge.remote_config import RemoteConfigStore
from edge.settings import EdgeSettings
from launch import devservers
from ruang import contract
from simulators.floor import SimulatedFloor
from tests.helpers import eventually

from .test_agent import of_type, running, watcher

pytestmark = pytest.mark.servers

BADGE = bytes.fromhex("04A1B2C3")


async def push(
    broker: devservers.Mosquitto, node: str, version: int, config: dict[str, Any]
) -> None:
    message = contract.ConfigPush(node=node, version=version, config=config)
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish(
            contract.topic_for(message), contract.encode(message), qos=1, retain=True
        )


def statuses(seen: list[contract.Message]) -> list[contract.ConfigStatus]:
    return [m for m in of_type(seen, contract.ConfigStatus)]  # type: ignore[misc]


async def test_invalid_refused_valid_applied_old_ignored_and_persisted_over_restart(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    node = f"edge-rc-{uuid.uuid4().hex[:6]}"
    async with SimulatedFloor(count=2) as floor:
        (d1, sim1), (d2, sim2) = floor.sims.items()
        units = [{"desk": d, "port": p} for d, p in floor.paths.items()]
        settings = EdgeSettings(
            node_id=node, mqtt_url=mosquitto_server.url, state_dir=tmp_path / "edge",
            health_interval_s=0.5, desk_units=[DeskUnitConfig(desk=d1, port=floor.paths[d1])],
        )  # fmt: skip
        async with watcher(mosquitto_server.url, node) as seen:
            async with running(EdgeAgent(settings)) as agent:
                await asyncio.wait_for(agent.uplink.connected.wait(), 10)

                # Invalid: refused with the reason, the node keeps serving its desk.
                await push(
                    mosquitto_server,
                    node,
                    2,
                    {"desk_units": [{"desk": d1, "port": floor.paths[d1], "baudrate": -5}]},
                )
                await push(mosquitto_server, node, 3, {"node_id": "hijacked"})

                async def refusals() -> list[contract.ConfigStatus]:
                    return [s for s in statuses(seen) if not s.applied]

                first, second = await eventually(
                    lambda: _at_least(refusals, 2), what="two refusals"
                )
                assert first.version == 2 and "baudrate" in (first.error or "")
                assert first.active_version is None
                assert second.version == 3 and "node_id" in (second.error or "")
                await sim1.tap(BADGE)
                await sim1.wait_led(lambda led: led.g > 0, timeout=5)

                # Valid: the second desk unit is opened and its taps work.
                await push(
                    mosquitto_server, node, 4, {"desk_units": units, "health_interval_s": 0.4}
                )

                async def applied() -> list[contract.ConfigStatus]:
                    return [s for s in statuses(seen) if s.applied and s.version == 4]

                (ok,) = await eventually(applied, what="config v4 applied")
                assert ok.active_version == 4 and ok.error is None
                await sim2.tap(BADGE)
                await sim2.wait_led(lambda led: led.g > 0, timeout=5)

                async def checkin_d2() -> bool:
                    return any(m.desk == d2 for m in of_type(seen, contract.CheckIn))  # type: ignore[attr-defined]

                await eventually(checkin_d2, what="check-in on the added desk")

                # Older than what runs: ignored (it would have removed desk 2).
                await push(mosquitto_server, node, 1, {"desk_units": units[:1]})
                await push(mosquitto_server, node, 5, {"away_s": 600})

                async def v5() -> list[contract.ConfigStatus]:
                    return [s for s in statuses(seen) if s.version == 5]

                (five,) = await eventually(v5, what="config v5 status")
                assert five.applied
                assert not [s for s in statuses(seen) if s.version == 1]
                assert set(agent.drivers) == {d1, d2} and agent.settings.away_s == 600

                async def health_v5() -> bool:
                    return any(h.config_version == 5 for h in of_type(seen, contract.NodeHealth))  # type: ignore[attr-defined]

                await eventually(health_v5, what="node health with config_version")

            # A restart with the file config alone: the persisted remote config wins.
            seen.clear()
            restarted = EdgeAgent(settings)
            assert set(restarted.drivers) == {d1, d2}
            assert restarted.settings.away_s == 600
            async with running(restarted):

                async def birth() -> list[contract.Message]:
                    return [m for m in of_type(seen, contract.NodeState) if m.online]  # type: ignore[attr-defined]

                births = await eventually(birth, what="birth after restart")
                assert births[-1].config_version == 5  # type: ignore[attr-defined]
                await sim2.tap(BADGE)
                await sim2.wait_led(lambda led: led.pattern is not None, timeout=5)


async def _at_least(fetch: Any, n: int) -> list[Any] | None:
    found = await fetch()
    return found if len(found) >= n else None


def test_store_rolls_back_to_previous_version(tmp_path: Path) -> None:
    base = EdgeSettings(node_id="n1", state_dir=tmp_path)
    store = RemoteConfigStore(tmp_path)
    decision = store.decide(1, {"away_s": 100}, base)
    assert decision.settings is not None and decision.config is not None
    store.commit(1, decision.config)
    second = store.decide(2, {"doors": []}, decision.settings)
    assert second.config == {"away_s": 100, "doors": []}
    store.commit(2, second.config)
    store.rollback("driver exploded")
    again = RemoteConfigStore(tmp_path)
    assert again.version == 1 and again.refused == (2, "driver exploded")
    assert again.effective(base).away_s == 100
    # The refused version, still retained on the broker, is not tried again.
    assert again.decide(2, {"doors": []}, base).ignored


def test_restart_needed_only_for_cold_keys(tmp_path: Path) -> None:
    base = EdgeSettings(node_id="n1", state_dir=tmp_path)
    store = RemoteConfigStore(tmp_path)
    assert not store.decide(1, {"health_interval_s": 5}, base).restart
    assert store.decide(1, {"building_tz": "Asia/Jakarta"}, base).restart
    # Pushing a cold key with its current value changes nothing: no restart.
    assert not store.decide(1, {"building_tz": base.building_tz}, base).restart


def test_a_pushed_vehicle_section_is_accepted_and_applied_by_a_restart(tmp_path: Path) -> None:
    base = EdgeSettings(node_id="shuttle-07", state_dir=tmp_path)
    store = RemoteConfigStore(tmp_path)
    vehicle = {"vehicle": "shuttle-07", "kind": "shuttle",
               "readers": [{"id": "door-1", "port": "/dev/ttyUSB1"}]}  # fmt: skip
    decision = store.decide(1, {"vehicle": vehicle}, base)
    assert decision.error is None and decision.restart
    assert decision.settings is not None and decision.settings.vehicle is not None
    assert decision.settings.vehicle.readers[0].id == "door-1"
    bad = store.decide(2, {"vehicle": {"vehicle": "shuttle-07", "kind": "tram"}}, base)
    assert bad.settings is None and bad.error is not None and "vehicle" in bad.error
