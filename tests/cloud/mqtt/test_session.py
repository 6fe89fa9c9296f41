"""The cloud's broker session against a Mosquitto that checks logins and speaks TLS.

The broker refuses anonymous clients and knows only the account the cloud wrote
to its password file (cloud_mqtt_username/cloud_mqtt_password); the cloud's
URL carries no login, so connecting at all proves it logs in with that account.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from cloud.mqtt.session import MqttSession
from cloud.settings import CloudSettings
from ruang import contract
from ruang.mqtt_wire import Incoming
from ruang.tls import client_tls_context
from tests.cloud.fleet.test_broker_credentials import (
    CLOUD_PASSWORD,
    AuthBroker,
    Pki,
    auth_broker,
    make_test_pki,
    write_broker_files,
)
from tests.helpers import eventually

pytestmark = pytest.mark.servers


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[tuple[CloudSettings, AuthBroker, Pki]]:
    settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/cloud.sqlite3",
        mosquitto_password_file=tmp_path / "broker" / "passwd",
        mosquitto_acl_file=tmp_path / "broker" / "acl",
        cloud_mqtt_password=CLOUD_PASSWORD,  # type: ignore[arg-type]
        mqtt_client_id=f"ruang-cloud-{uuid.uuid4().hex[:8]}",
    )
    await write_broker_files(settings)
    pki = make_test_pki(tmp_path / "pki")
    assert settings.mosquitto_password_file and settings.mosquitto_acl_file
    with auth_broker(settings.mosquitto_password_file, settings.mosquitto_acl_file, pki) as broker:
        yield settings, broker, pki


async def test_the_session_connects_over_mqtts_with_the_cloud_account_and_receives(
    tls_broker: tuple[CloudSettings, AuthBroker, Pki],
) -> None:
    base, broker, pki = tls_broker
    settings = base.model_copy(
        update={"mqtt_url": f"mqtts://localhost:{broker.tls_port}", "mqtt_ca_file": pki.ca}
    )
    received: list[Incoming] = []
    session = MqttSession(settings, received.append, contract.CLOUD_SUBSCRIPTIONS)
    session.start()
    try:

        async def subscribed() -> bool:
            return session.connected

        await eventually(subscribed, what="TLS connection with the cloud account")
        assert session.connects == 1
        heartbeat = contract.Heartbeat(node="node-x", desk="d-1", uptime_s=1)
        async with aiomqtt.Client(
            "localhost",
            broker.tls_port or 0,
            username="ruang-cloud",
            password=CLOUD_PASSWORD,
            identifier="peer",
            tls_context=client_tls_context(pki.ca),
        ) as peer:
            await peer.subscribe(contract.node_command_subscription("node-x"))

            async def delivered() -> bool:
                await peer.publish(contract.topic_for(heartbeat), contract.encode(heartbeat))
                return bool(received)

            await eventually(delivered, what="a node message reaching the session")
            command = contract.LedCommand(node="node-x", desk="d-1", r=0, g=255, b=0)
            assert await session.publish(command) == contract.topic_for(command)
            async for message in peer.messages:
                assert message.topic.value == contract.topic_for(command)
                break
        assert received[0].topic == contract.topic_for(heartbeat)
    finally:
        await session.stop()


async def test_the_session_refuses_a_broker_certificate_not_from_the_configured_ca(
    tls_broker: tuple[CloudSettings, AuthBroker, Pki],
    tmp_path: Path,
) -> None:
    base, broker, _ = tls_broker
    stranger = make_test_pki(tmp_path / "other-pki")
    settings = base.model_copy(
        update={"mqtt_url": f"mqtts://localhost:{broker.tls_port}", "mqtt_ca_file": stranger.ca}
    )
    errors: list[str] = []
    session = MqttSession(
        settings, lambda _: None, contract.CLOUD_SUBSCRIPTIONS, on_error=errors.append
    )
    session.start()
    try:

        async def refused() -> bool:
            return bool(errors)

        await eventually(refused, what="the TLS handshake failing")
        assert not session.connected and session.connects == 0
        assert "certificate" in errors[0].lower() or "ssl" in errors[0].lower()
    finally:
        await session.stop()
