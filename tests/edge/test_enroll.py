"""`ruang edge enroll` end to end: a real cloud (uvicorn) and a real Mosquitto with TLS and auth.

The config it writes must load with `load_edge_settings` and get the node onto
the broker over TLS with the issued password, which the broker learnt about by
the cloud rewriting its files and signalling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import httpx
import pytest

from cloud.settings import CloudSettings
from edge.enroll import EnrolError, enroll
from edge.settings import load_edge_settings
from launch import devservers
from launch.webapp import serve
from ruang.mqtt_url import parse_broker_url
from ruang.tls import client_tls_context
from tests.cloud.fleet.test_broker_credentials import auth_broker, make_test_pki, write_broker_files
from tests.helpers import auth_headers, eventually

pytestmark = pytest.mark.servers

CLOUD_PASSWORD = "cloud-secret-for-tests"


@contextlib.asynccontextmanager
async def running_cloud(settings: CloudSettings) -> AsyncIterator[str]:
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=ready))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        yield f"http://127.0.0.1:{settings.http_port}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_enroll_writes_a_config_that_loads_and_connects_over_tls(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki")
    broker_dir = tmp_path / "broker"
    settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/cloud.sqlite3",
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        http_port=devservers.free_port(),
        mqtt_client_id=f"ruang-cloud-{uuid.uuid4().hex[:8]}",
        mosquitto_password_file=broker_dir / "passwd",
        mosquitto_acl_file=broker_dir / "acl",
        mosquitto_pid_file=broker_dir / "mosquitto.pid",
        mqtt_ca_file=pki.ca,
        cloud_mqtt_password=CLOUD_PASSWORD,  # type: ignore[arg-type]
    )
    await write_broker_files(settings)  # the broker needs its files before it starts
    assert settings.mosquitto_password_file and settings.mosquitto_acl_file
    with auth_broker(settings.mosquitto_password_file, settings.mosquitto_acl_file, pki) as broker:
        assert settings.mosquitto_pid_file is not None
        broker.write_pid(settings.mosquitto_pid_file)
        settings = settings.model_copy(
            update={
                "mqtt_url": f"mqtt://ruang-cloud:{CLOUD_PASSWORD}@127.0.0.1:{broker.port}",
                "public_mqtt_url": f"mqtts://localhost:{broker.tls_port}",
            }
        )
        async with running_cloud(settings) as cloud_url:
            async with httpx.AsyncClient(
                base_url=cloud_url, headers=auth_headers(settings, roles=("technician",))
            ) as http:
                desk_units = [{"desk": "d-101", "port": "/dev/serial/by-id/unit-101"}]
                response = await http.post(
                    "/api/v1/enrolment-tokens",
                    json={"node_id": "ikn-node-e2e", "config": {"desk_units": desk_units}},
                )
                token = response.json()["token"]

            config_path, env_path = tmp_path / "etc" / "edge.yaml", tmp_path / "etc" / "edge.env"
            state_dir = tmp_path / "state"
            result = await enroll(cloud_url, token, config_path, env_path, state_dir, False)

            edge = load_edge_settings(config_path)
            assert edge.node_id == result.node_id == "ikn-node-e2e"
            assert [u.desk for u in edge.desk_units] == ["d-101"]
            assert edge.mqtt_ca_file == state_dir / "ca.pem"
            assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
            key, _, password = env_path.read_text().strip().partition("=")
            assert key == "RUANG_MQTT_PASSWORD"

            # The node, as its uplink will: TLS with the handed-over CA, issued credentials.
            address = parse_broker_url(edge.mqtt_url)

            async def node_connects() -> bool:
                try:
                    async with aiomqtt.Client(
                        address.host,
                        address.port,
                        username=edge.mqtt_username,
                        password=password,
                        tls_context=client_tls_context(edge.mqtt_ca_file),
                        identifier=f"ruang-edge-{edge.node_id}",
                        timeout=10,
                    ) as node:
                        await node.publish(
                            f"ruang/v1/nodes/{edge.node_id}/telemetry/t", b"1", qos=1
                        )
                except aiomqtt.MqttError:
                    return False  # the broker may not have reloaded yet
                return True

            await eventually(node_connects, what="enrolled node connects over TLS")

            # The token is spent: a second run is refused with a clear reason.
            with pytest.raises(EnrolError, match="already used"):
                await enroll(cloud_url, token, config_path, env_path, state_dir, True)


async def test_enroll_refuses_to_overwrite_an_existing_config(tmp_path: Path) -> None:
    config_path = tmp_path / "edge.yaml"
    config_path.write_text("node_id: old\n")
    with pytest.raises(EnrolError, match="--force"):
        await enroll(
            "http://127.0.0.1:9", "t", config_path, tmp_path / "edge.env", tmp_path / "state", False
        )
    assert config_path.read_text() == "node_id: old\n"


async def test_enroll_reports_an_unreachable_cloud(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{devservers.free_port()}"
    with pytest.raises(EnrolError, match="cannot reach the cloud"):
        await enroll(
            url, "t", tmp_path / "edge.yaml", tmp_path / "edge.env", tmp_path / "state", False
        )
    assert not (tmp_path / "edge.yaml").exists()
