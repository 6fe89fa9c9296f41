"""Node accounts kept in Mosquitto's dynamic-security plugin, checked by a real broker.

Mosquitto runs with the plugin and `allow_anonymous false`; its one account at
first is the cloud's, holding the plugin's admin role (`mosquitto_ctrl dynsec
init`). The cloud talks to it over TLS only (mqtts://, the test CA), through its
real routes; nodes log in with what enrolment issued them, as real MQTT clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from cloud.db.engine import make_engine, migrate
from cloud.fleet.broker_dynsec import (
    ALREADY_GONE,
    CLOUD_ROLE,
    dynsec_session,
    node_account_commands,
    node_acls,
    node_role,
)
from cloud.fleet.enrolment import create_token, enrol
from cloud.settings import CloudSettings
from launch import devservers
from tests.cloud.conftest import RunningCloud, start_cloud, unique
from tests.cloud.fleet.test_broker_credentials import (
    CLOUD_PASSWORD,
    CLOUD_USER,
    ROOT,
    Pki,
    client,
    make_test_pki,
    next_message,
    publish_forbidden_then_marker,
)
from tests.helpers import eventually, keep_history, missing

pytestmark = pytest.mark.servers


@dataclass
class DynsecBroker:
    server: devservers.Mosquitto
    tls_port: int
    pki: Pki

    @property
    def port(self) -> int:
        """The plain listener, where the tests' node clients connect."""
        return self.server.port

    def start(self) -> None:
        self.server.start()
        devservers.wait_for_port(self.tls_port, proc=self.server.proc)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DynsecBroker]:
    pki = make_test_pki(tmp_path / "pki")
    tls_port = devservers.free_port()
    tls = [
        f"listener {tls_port} {devservers.LOOPBACK}",
        f"cafile {pki.ca}",
        f"certfile {pki.cert}",
        f"keyfile {pki.key}",
    ]
    try:
        context = devservers.mosquitto_dynsec(CLOUD_USER, CLOUD_PASSWORD, "\n".join(tls))
        server = context.__enter__()
    except devservers.ServerUnavailable as exc:
        missing(str(exc))
    try:
        devservers.wait_for_port(tls_port, proc=server.proc)
        yield DynsecBroker(server, tls_port, pki)
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def settings(broker: DynsecBroker, tmp_path: Path) -> CloudSettings:
    return CloudSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/cloud.sqlite3",
        mqtt_url=f"mqtts://localhost:{broker.tls_port}",
        mqtt_ca_file=broker.pki.ca,
        mqtt_client_id=unique("ruang-cloud-test"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        cloud_mqtt_username=CLOUD_USER,
        cloud_mqtt_password=CLOUD_PASSWORD,  # type: ignore[arg-type]
        broker_accounts="dynsec",
        broker_admin_timeout_s=10,
        **keep_history(),
    )


async def enrol_over_http(cloud: RunningCloud, node_id: str) -> str:
    """The node's broker password, from a token issued and used through the routes."""
    issued = await cloud.http.post("/api/v1/enrolment-tokens", json={"node_id": node_id})
    assert issued.status_code == 201, issued.text
    enrolled = await cloud.http.post("/api/v1/enroll", json={"token": issued.json()["token"]})
    assert enrolled.status_code == 200, enrolled.text
    password: str = enrolled.json()["mqtt_password"]
    return password


async def broker_clients(settings: CloudSettings) -> dict[str, set[str]]:
    """Every client the plugin knows, with the names of its roles."""
    async with dynsec_session(settings) as session:
        (reply,) = await session.ok({"command": "listClients", "verbose": True, "count": -1})
    return {
        c["username"]: {r["rolename"] for r in c.get("roles", [])} for c in reply.data["clients"]
    }


async def refused(port: int, username: str, password: str) -> bool:
    try:
        async with client(port, username, password):
            return False
    except aiomqtt.MqttError:
        return True


# --- without a broker ---------------------------------------------------------------------


def test_node_role_names_only_the_nodes_own_topics() -> None:
    acls = {(a.kind, a.topic) for a in node_acls("node-a")}
    assert ("publishClientSend", f"{ROOT}/node-a/telemetry/#") in acls
    assert ("subscribePattern", f"{ROOT}/node-a/commands/#") in acls
    assert ("publishClientSend", f"{ROOT}/node-a/commands/#") not in acls
    assert all(topic.startswith(f"{ROOT}/node-a/") for _, topic in acls)


@pytest.mark.parametrize("node_id", ["+", "a/#", "x/y", ""])
def test_node_role_refuses_ids_that_would_widen_its_topics(node_id: str) -> None:
    with pytest.raises(ValueError):
        node_acls(node_id)


def test_dynsec_accounts_need_the_clouds_broker_login() -> None:
    with pytest.raises(ValueError, match="RUANG_CLOUD_MQTT_PASSWORD"):
        CloudSettings(broker_accounts="dynsec")
    assert CloudSettings(mosquitto_password_file=Path("/x")).broker_accounts_kind == "files"
    assert CloudSettings().broker_accounts_kind is None


# --- a real broker with the plugin --------------------------------------------------------


@pytest.fixture
async def cloud(settings: CloudSettings) -> AsyncIterator[RunningCloud]:
    async with start_cloud(settings) as running:
        yield running


async def test_enrolled_node_publishes_only_below_its_own_topics(
    cloud: RunningCloud, broker: DynsecBroker
) -> None:
    port = broker.port
    password = await enrol_over_http(cloud, "node-a")
    await enrol_over_http(cloud, "node-b")
    async with (
        client(port, CLOUD_USER, CLOUD_PASSWORD) as observer,
        client(port, "node-a", password) as node_a,
    ):
        await observer.subscribe("ruang/v1/#", qos=1)
        allowed = [
            f"{ROOT}/node-a/state",
            f"{ROOT}/node-a/events/check_in",
            f"{ROOT}/node-a/telemetry/presence",
            f"{ROOT}/node-a/backlog/presence",
        ]
        for topic in allowed:
            await node_a.publish(topic, b"mine", qos=1)
        messages = aiter(observer.messages)
        received = [str((await next_message(messages)).topic) for _ in allowed]
        assert sorted(received) == sorted(allowed)

        # As with the files backend, 2.0.11 drops a connection over a denied publish:
        # a marker published after it proves the forged message went nowhere.
        forbidden = [
            f"{ROOT}/node-b/state",
            f"{ROOT}/node-b/telemetry/presence",
            f"{ROOT}/node-a/commands/led",
            "ruang/v1/other",
        ]
        for n, topic in enumerate(forbidden):
            marker = f"marker {n}".encode()
            await publish_forbidden_then_marker(port, password, topic, marker)
            first = await next_message(messages)
            assert (str(first.topic), first.payload) == (
                f"{ROOT}/node-a/telemetry/marker",
                marker,
            ), topic


async def test_enrolled_node_reads_its_own_commands_only(
    cloud: RunningCloud, broker: DynsecBroker
) -> None:
    port = broker.port
    password = await enrol_over_http(cloud, "node-a")
    await enrol_over_http(cloud, "node-b")
    async with client(port, "node-a", password) as node_a:
        # Whether the broker refuses the subscription or filters delivery, nothing of B's comes.
        with contextlib.suppress(aiomqtt.MqttError):
            await node_a.subscribe(f"{ROOT}/node-b/commands/+", qos=1)
        # The edge's own subscription (ruang.contract.node_command_subscription).
        await node_a.subscribe(f"{ROOT}/node-a/commands/+", qos=1)
        # The cloud's account publishes commands thanks to the role start-up gave it.
        async with client(port, CLOUD_USER, CLOUD_PASSWORD) as cloud_client:
            await cloud_client.publish(f"{ROOT}/node-b/commands/led", b"for b", qos=1)
            await cloud_client.publish(f"{ROOT}/node-a/commands/led", b"for a", qos=1)
        first = await next_message(aiter(node_a.messages))
        assert (str(first.topic), first.payload) == (f"{ROOT}/node-a/commands/led", b"for a")


async def test_reenrolment_replaces_the_nodes_broker_password(
    cloud: RunningCloud, broker: DynsecBroker
) -> None:
    old = await enrol_over_http(cloud, "node-re")
    new = await enrol_over_http(cloud, "node-re")
    assert await refused(broker.port, "node-re", old)
    async with client(broker.port, "node-re", new):
        pass


async def test_revoked_node_is_disconnected_and_can_no_longer_log_in(
    cloud: RunningCloud, broker: DynsecBroker, settings: CloudSettings
) -> None:
    port = broker.port
    password_a = await enrol_over_http(cloud, "node-a")
    password_b = await enrol_over_http(cloud, "node-b")
    async with client(port, "node-a", password_a) as node_a:
        await node_a.subscribe(f"{ROOT}/node-a/commands/+", qos=1)
        response = await cloud.http.delete("/api/v1/nodes/node-a/credentials")
        assert response.status_code == 204, response.text
        # The plugin drops the open connection with the client it deleted.
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(20):
                await anext(aiter(node_a.messages))
    assert await refused(port, "node-a", password_a)
    clients = await broker_clients(settings)
    assert "node-a" not in clients and clients["node-b"] == {node_role("node-b")}
    async with client(port, "node-b", password_b):
        pass  # the others keep working


async def test_startup_sync_removes_stale_node_accounts_and_keeps_the_clouds_own(
    settings: CloudSettings, broker: DynsecBroker, caplog: pytest.LogCaptureFixture
) -> None:
    # A node account whose credential the database no longer has (revoked while the
    # broker was unreachable, or left by a restored backup), and an operator's account.
    async with dynsec_session(settings) as session:
        await session.ok(*node_account_commands("node-stale", "stale"), tolerate=ALREADY_GONE)
        await session.ok({"command": "createClient", "username": "operator", "password": "op"})
    async with client(broker.port, "node-stale", "stale"):
        pass  # it works before the sync
    # An enrolled node the broker never heard of: its password exists only as a hash.
    await migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            issued = await create_token(conn, settings, node_id="node-lost", ttl_s=60, config={})
            await enrol(conn, settings, token=issued.token, hardware_id=None)
    finally:
        await engine.dispose()

    with caplog.at_level(logging.WARNING, logger="cloud.fleet.broker_dynsec"):
        async with start_cloud(settings):
            clients = await broker_clients(settings)
    assert "node-stale" not in clients
    assert CLOUD_ROLE in clients[CLOUD_USER] and "operator" in clients
    assert await refused(broker.port, "node-stale", "stale")
    assert any("node-lost" in r.getMessage() for r in caplog.records)
    async with client(broker.port, CLOUD_USER, CLOUD_PASSWORD) as cloud_client:
        await cloud_client.publish(f"{ROOT}/node-lost/commands/led", b"still the cloud", qos=1)


async def test_enrolment_answers_503_while_the_broker_is_down_and_the_token_stays_usable(
    cloud: RunningCloud, broker: DynsecBroker
) -> None:
    issued = await cloud.http.post("/api/v1/enrolment-tokens", json={"node_id": "node-late"})
    token = issued.json()["token"]
    broker.server.stop()
    try:
        down = await cloud.http.post("/api/v1/enroll", json={"token": token})
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
    finally:
        broker.start()

    async def enrolled() -> str | None:
        response = await cloud.http.post("/api/v1/enroll", json={"token": token})
        assert response.status_code in (200, 503), response.text
        return response.json()["mqtt_password"] if response.status_code == 200 else None

    password = await eventually(enrolled, what="enrolment once the broker is back")
    assert password is not None
    async with client(broker.port, "node-late", password):
        pass


@pytest.fixture
def reference_broker(tmp_path: Path) -> Iterator[tuple[int, Pki]]:
    """deploy/mosquitto/dynsec.conf with this machine's paths: (its TLS port, the CA)."""
    try:
        plugin = devservers.dynsec_plugin()
        binary = devservers.find_binary("mosquitto")
        ctrl = devservers.find_binary("mosquitto_ctrl")
    except devservers.ServerUnavailable as exc:
        missing(str(exc))
    pki = make_test_pki(tmp_path / "pki")
    state = tmp_path / "dynamic-security.json"
    subprocess.run(
        [ctrl, "dynsec", "init", str(state), CLOUD_USER, CLOUD_PASSWORD],
        check=True,
        capture_output=True,
    )
    port = devservers.free_port()
    text = (Path(__file__).parents[3] / "deploy" / "mosquitto" / "dynsec.conf").read_text()
    for deployed, here in {
        "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so": plugin,
        "/var/lib/mosquitto/dynamic-security.json": str(state),
        "/var/lib/mosquitto/": f"{tmp_path}/",
        "/etc/mosquitto/ca/ruang-ca.pem": str(pki.ca),
        "/etc/mosquitto/certs/broker.pem": str(pki.cert),
        "/etc/mosquitto/certs/broker.key": str(pki.key),
        "listener 8883": f"listener {port} {devservers.LOOPBACK}",
    }.items():
        assert deployed in text, deployed
        text = text.replace(deployed, here)
    conf = tmp_path / "mosquitto.conf"
    # As root, Mosquitto would drop to a `mosquitto` user that cannot read the temp dir.
    conf.write_text(("user root\n" if os.geteuid() == 0 else "") + text)
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        devservers.wait_for_port(port, proc=proc)
        yield port, pki
    finally:
        proc.terminate()
        proc.wait(10)


async def test_reference_dynsec_config_runs_a_broker_the_cloud_can_drive_over_tls(
    reference_broker: tuple[int, Pki],
) -> None:
    port, pki = reference_broker
    settings = CloudSettings(
        mqtt_url=f"mqtts://localhost:{port}",
        mqtt_ca_file=pki.ca,
        cloud_mqtt_username=CLOUD_USER,
        cloud_mqtt_password=CLOUD_PASSWORD,  # type: ignore[arg-type]
        broker_accounts="dynsec",
    )
    assert CLOUD_USER in await broker_clients(settings)
