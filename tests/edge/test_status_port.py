"""The agent's status port: /metrics against real ptys and Mosquitto, and hostile clients."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.agent import EdgeAgent
from edge.settings import EdgeSettings
from firmware_bridge.deskunit import BadgeRead, encode_frame
from launch import devservers
from ruang import contract
from simulators.floor import SimulatedFloor
from tests.edge.test_agent import running, settings_for
from tests.helpers import eventually

pytestmark = pytest.mark.servers

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def with_status_port(settings: EdgeSettings) -> EdgeSettings:
    return settings.model_copy(update={"status_port": 0})


async def scrape(agent: EdgeAgent) -> Samples:
    server = agent.status_server
    assert server is not None

    async def bound() -> bool:
        return server._server is not None

    await eventually(bound, what="status port open")
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{server.port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def test_metrics_show_uplink_outbox_and_device_rejects_by_reason(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    node = "edge-metrics-1"
    async with SimulatedFloor(count=1) as floor:
        settings = with_status_port(settings_for(tmp_path, node, mosquitto_server.url, floor))
        async with running(EdgeAgent(settings)) as agent:
            await asyncio.wait_for(agent.uplink.connected.wait(), 10)
            (desk, sim), badge = next(iter(floor.sims.items())), "04A1B2C3"

            async def unit_online() -> bool:
                return agent.drivers[desk].state.online

            # Bytes written before the driver opened the port would be lost, not rejected.
            await eventually(unit_online, what="desk unit online")
            corrupt = bytearray(encode_frame(7, BadgeRead(bytes.fromhex(badge))))
            corrupt[3] ^= 0x40
            for _ in range(2):
                await sim.inject_raw(bytes(corrupt))
            for _ in range(3):
                await sim.inject_raw(b"\x05\x01\x02\x03\x00")
            await sim.tap(bytes.fromhex(badge))

            async def counted() -> Samples | None:
                samples = await scrape(agent)
                errors = "ruang_edge_device_read_errors_total"
                crc = value(samples, errors, device=desk, kind="deskunit", reason="bad_crc")
                cobs = value(samples, errors, device=desk, kind="deskunit", reason="cobs")
                published = value(samples, "ruang_edge_messages_published_total", stream="live")
                return samples if (crc, cobs) == (2, 3) and (published or 0) >= 1 else None

            samples = await eventually(counted, what="rejects and publishes on /metrics")
            assert samples is not None
            assert value(samples, "ruang_edge_mqtt_connected") == 1
            assert value(samples, "ruang_edge_device_online", device=desk, kind="deskunit") == 1
            depth = value(samples, "ruang_edge_outbox_depth")
            assert depth is not None and depth >= 0
            age = value(samples, "ruang_edge_outbox_oldest_age_seconds")
            assert age is not None and age >= 0
            assert agent.status_server is not None
            assert badge not in agent.status_server._metrics.render().decode()


async def test_oldest_outbox_age_grows_while_the_broker_is_unreachable(tmp_path: Path) -> None:
    settings = EdgeSettings(
        node_id="edge-metrics-2",
        mqtt_url=f"mqtt://127.0.0.1:{devservers.free_port()}",
        state_dir=tmp_path / "edge",
        health_interval_s=0.2,
        status_port=0,
    )
    # The scrape's clock, an hour ahead of the messages' ts: then moved on by hand.
    wall = [time.time() + 3600.0]
    async with running(EdgeAgent(settings)) as agent:
        server = agent.status_server
        assert server is not None
        server._metrics.wall = lambda: wall[0]

        async def queued() -> Samples | None:
            samples = await scrape(agent)
            # Depth counts rows before their group commit; the age reads committed rows.
            committed = (value(samples, "ruang_edge_outbox_oldest_age_seconds") or 0) > 0
            return samples if committed else None

        samples = await eventually(queued, what="health messages committed to the outbox")
        assert samples is not None
        assert value(samples, "ruang_edge_mqtt_connected") == 0
        assert value(samples, "ruang_edge_snapshot_age_seconds") is None  # no snapshot yet
        first = value(samples, "ruang_edge_outbox_oldest_age_seconds")
        wall[0] += 120.0
        later = value(await scrape(agent), "ruang_edge_outbox_oldest_age_seconds")
        assert first is not None and later is not None
        assert later == pytest.approx(first + 120.0)


async def test_hostile_requests_are_refused_and_the_port_keeps_serving(tmp_path: Path) -> None:
    settings = EdgeSettings(
        node_id="edge-metrics-3",
        mqtt_url=f"mqtt://127.0.0.1:{devservers.free_port()}",
        state_dir=tmp_path / "edge",
        status_port=0,
    )
    async with running(EdgeAgent(settings)) as agent:
        await scrape(agent)
        server = agent.status_server
        assert server is not None

        async def exchange(request: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(request)
            await writer.drain()
            answer = await reader.read()
            writer.close()
            return answer

        assert (await exchange(b"\x00\xff garbage\r\n\r\n")).startswith(b"HTTP/1.0 400")
        assert (await exchange(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.0 400"
        )
        assert (await exchange(b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 405")
        assert (await exchange(b"GET /status.json HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 404")
        head = await exchange(b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200") and head.endswith(b"\r\n\r\n")
        assert server.refused == 4
        assert value(await scrape(agent), "ruang_edge_mqtt_connected") == 0


async def test_a_port_already_taken_leaves_the_agent_running(tmp_path: Path) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    settings = EdgeSettings(
        node_id="edge-metrics-4",
        mqtt_url=f"mqtt://127.0.0.1:{devservers.free_port()}",
        state_dir=tmp_path / "edge",
        health_interval_s=0.2,
        status_port=port,
    )
    try:
        async with running(EdgeAgent(settings)) as agent:

            async def queued() -> bool:
                return agent.uplink.queued >= 1

            await eventually(queued, what="the agent keeps working without its status port")
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_snapshot_age_and_version_follow_the_snapshot_the_node_holds(
    tmp_path: Path,
) -> None:
    from cryptography.hazmat.primitives import serialization

    from edge.metrics import EdgeMetrics
    from edge.snapshot import SnapshotStore
    from edge.uplink import Uplink
    from tests.edge.snapshots import body, keypair, sign

    key, pem = keypair()
    public = serialization.load_pem_public_key(pem)
    store = SnapshotStore(tmp_path / "snapshot.json", public)  # type: ignore[arg-type]
    settings = EdgeSettings(node_id="edge-metrics-5", state_dir=tmp_path / "edge")
    settings.state_dir.mkdir()

    def birth(bdseq: int) -> contract.NodeState:
        return contract.NodeState(node=settings.node_id, online=True, bdseq=bdseq)

    async def ignore(_command: contract.Message) -> None:
        return None

    uplink = Uplink(settings, birth=birth, on_command=ignore)
    metrics = EdgeMetrics(
        settings.node_id, uplink=uplink, snapshots=store, desk_units=list, devices=[],
        wall=lambda: 1_795_000_090.0,
    )  # fmt: skip
    try:
        store.apply(sign(key, settings.node_id, body(version=7, now=1_795_000_000.0)))
        with pytest.raises(ValueError):
            store.apply(sign(key, settings.node_id, body(version=6)))
        samples = parse(metrics.render().decode())
        assert value(samples, "ruang_edge_snapshot_age_seconds") == 90.0
        assert value(samples, "ruang_edge_snapshot_version") == 7
        assert value(samples, "ruang_edge_snapshots_rejected_total") == 1
        assert value(samples, "ruang_edge_outbox_oldest_age_seconds") == 0  # empty outbox
    finally:
        metrics.close()
        uplink.outbox.close()
