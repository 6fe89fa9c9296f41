"""Monitoring end to end: VictoriaMetrics scrapes a running cloud and an edge agent's status port.

A broker of the test's own (no other test's retained messages to refuse), the cloud
under uvicorn, an edge agent with a simulated desk unit on a pty, and VictoriaMetrics
started with a Prometheus scrape config naming both on loopback. The test sends
known garbage to both and reads back, from VictoriaMetrics, exactly those counts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
import yaml

from edge.agent import EdgeAgent
from edge.devices.deskunit import DeskUnitConfig
from edge.settings import EdgeSettings
from firmware_bridge.deskunit import BadgeRead, encode_frame
from launch import devservers
from ruang import contract
from simulators.floor import SimulatedFloor
from tests.conftest import _start
from tests.e2e.test_walking_skeleton import bind_desks, cloud_settings, node, running_cloud
from tests.helpers import eventually

pytestmark = pytest.mark.servers

BAD_JSON, UNKNOWN_KIND, BAD_CRC = 4, 2, 3


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[devservers.Mosquitto]:
    broker = devservers.Mosquitto(port=devservers.free_port(), workdir=tmp_path / "broker")
    broker.workdir.mkdir()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def scrape_config(path: Path, cloud_port: int, edge_port: int) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "ruang-cloud", "static_configs": [
                        {"targets": [f"127.0.0.1:{cloud_port}"]}]},
                    {"job_name": "ruang-edge", "static_configs": [
                        {"targets": [f"127.0.0.1:{edge_port}"]}]},
                ],
            }
        )
    )  # fmt: skip
    return path


@dataclass(frozen=True)
class Scraper:
    vm: devservers.VictoriaMetrics
    cloud_port: int
    edge_port: int


@pytest.fixture
def scraper(tmp_path: Path) -> Iterator[Scraper]:
    """VictoriaMetrics scraping, every second, the two loopback ports the test will serve."""
    cloud_port, edge_port = devservers.free_port(), devservers.free_port()
    config = scrape_config(tmp_path / "scrape.yaml", cloud_port, edge_port)
    for vm in _start(devservers.victoria_metrics(scrape_config=config)):
        yield Scraper(vm, cloud_port, edge_port)


def latest(vm: devservers.VictoriaMetrics, promql: str) -> float | None:
    result = vm.query(promql)
    if len(result) != 1:
        return None
    sample = result[0]["value"]
    assert isinstance(sample, list)
    return float(sample[1])


async def test_victoria_metrics_scrapes_what_the_cloud_and_the_edge_saw(
    tmp_path: Path, own_broker: devservers.Mosquitto, scraper: Scraper
) -> None:
    settings = cloud_settings(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path}/ruang.sqlite3", own_broker.url
    ).model_copy(update={"http_port": scraper.cloud_port})
    vm, edge_port = scraper.vm, scraper.edge_port
    node_id = f"mon-{uuid.uuid4().hex[:8]}"
    async with SimulatedFloor(count=1) as floor, running_cloud(settings) as client:
        (desk_id, sim), badge = next(iter(floor.sims.items())), bytes.fromhex("04A1B2C3")
        await bind_desks(settings, node_id, list(floor.paths))
        agent = EdgeAgent(
            EdgeSettings(
                node_id=node_id,
                mqtt_url=own_broker.url,
                state_dir=tmp_path / "edge",
                health_interval_s=0.5,
                status_port=edge_port,
                desk_units=[DeskUnitConfig(desk=d, port=p) for d, p in floor.paths.items()],
            )
        )
        async with agent:

            async def born() -> bool:
                return (await node(client, node_id)).get("online") is True

            await eventually(born, what="node online")

            async def unit_online() -> bool:
                return agent.drivers[desk_id].state.online

            # Bytes written before the driver opened the port would be lost, not rejected.
            await eventually(unit_online, what="desk unit online")
            await sim.tap(badge)
            corrupt = bytearray(encode_frame(9, BadgeRead(badge)))
            corrupt[3] ^= 0x40
            for _ in range(BAD_CRC):
                await sim.inject_raw(bytes(corrupt))
            async with aiomqtt.Client("127.0.0.1", own_broker.port) as garbage:
                for _ in range(BAD_JSON):
                    topic = contract.telemetry_topic(node_id, "presence")
                    await garbage.publish(topic, b"{not json", qos=1)
                for _ in range(UNKNOWN_KIND):
                    topic = contract.telemetry_topic(node_id, "smell")
                    await garbage.publish(topic, b"{}", qos=1)

            def scraped(promql: str, expected: float) -> bool:
                return latest(vm, promql) == expected

            async def refusals_scraped() -> bool:
                return await asyncio.to_thread(
                    lambda: (
                        scraped(
                            'ruang_ingest_rejected_total{job="ruang-cloud",reason="bad_json"}',
                            BAD_JSON,
                        )
                        and scraped(
                            'ruang_ingest_rejected_total{job="ruang-cloud",reason="unknown_kind"}',
                            UNKNOWN_KIND,
                        )
                        and scraped(
                            'ruang_edge_device_read_errors_total{job="ruang-edge",'
                            f'device="{desk_id}",reason="bad_crc"}}',
                            BAD_CRC,
                        )
                    )
                )

            await eventually(refusals_scraped, timeout=60, interval=0.5,
                             what="refusals scraped into VictoriaMetrics")  # fmt: skip

            def read(promql: str) -> float | None:
                return latest(vm, promql)

            # Nothing else was refused: the only reasons are the ones the test sent.
            reasons = await asyncio.to_thread(
                vm.query, 'ruang_ingest_rejected_total{job="ruang-cloud"}'
            )
            assert {r["metric"]["reason"] for r in reasons} == {  # type: ignore[index]
                "bad_json",
                "unknown_kind",
            }
            assert await asyncio.to_thread(read, 'up{job="ruang-cloud"}') == 1
            assert await asyncio.to_thread(read, 'up{job="ruang-edge"}') == 1
            assert await asyncio.to_thread(read, "ruang_job_leader") == 1
            assert await asyncio.to_thread(read, "ruang_edge_mqtt_connected") == 1
            checkins = await asyncio.to_thread(
                read, 'ruang_ingest_messages_total{job="ruang-cloud",kind="checkin"}'
            )
            assert checkins == 1
            lag = await asyncio.to_thread(
                read, 'ruang_ingest_lag_seconds_count{job="ruang-cloud",channel="events"}'
            )
            assert lag is not None and lag >= 1
            published = await asyncio.to_thread(
                read, 'ruang_edge_messages_published_total{stream="live"}'
            )
            assert published is not None and published >= 1
            served = await asyncio.to_thread(
                read,
                'sum(ruang_http_request_duration_seconds_count{route="/api/v1/nodes"})',
            )
            assert served is not None and served >= 1
            # No badge in any scraped series.
            everything = await asyncio.to_thread(vm.export, '{__name__=~"ruang_.*"}')
            assert everything
            assert badge.hex().upper() not in str(everything)
