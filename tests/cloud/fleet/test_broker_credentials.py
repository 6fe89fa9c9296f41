"""The broker files the cloud writes, checked by a real Mosquitto that enforces them.

Mosquitto runs with `allow_anonymous false` and the password and ACL files made
by cloud.fleet.broker_credentials from enrolled credentials; nodes connect with what
enrolment issued them. TLS runs against a CA made on the fly with `openssl`.
The helpers at the top are shared with tests/edge/test_enroll.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import stat
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from cloud.db.engine import make_engine, migrate
from cloud.fleet.broker_credentials import (
    BrokerFiles,
    hash_password,
    render_acl_file,
    render_password_file,
    verify_password,
)
from cloud.fleet.enrolment import create_token, enrol, revoke
from cloud.settings import CloudSettings
from launch import devservers
from ruang.tls import client_tls_context
from tests.helpers import eventually, missing

pytestmark = pytest.mark.servers

CLOUD_USER = "ruang-cloud"
CLOUD_PASSWORD = "cloud-secret-for-tests"
ROOT = "ruang/v1/nodes"


# --- shared helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def make_test_pki(directory: Path) -> Pki:
    """A throw-away CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("the openssl CLI")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    csr, cert, key = directory / "server.csr", directory / "server.pem", directory / "server.key"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for args in (
        [
            "req",
            "-x509",
            *ec,
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "2",
            "-subj",
            "/CN=Ruang test CA",
        ],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        [
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "2",
            "-extfile",
            ext,
        ],
    ):
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)
    return Pki(ca=ca, cert=cert, key=key)


@dataclass
class AuthBroker:
    server: devservers.Mosquitto
    tls_port: int | None

    @property
    def port(self) -> int:
        return self.server.port

    def write_pid(self, pid_file: Path) -> None:
        # Mosquitto writes pid_file only when it daemonises; tests run it in the foreground.
        assert self.server.proc is not None
        pid_file.write_text(f"{self.server.proc.pid}\n")


@contextlib.contextmanager
def auth_broker(
    password_file: Path, acl_file: Path, pki: Pki | None = None
) -> Iterator[AuthBroker]:
    """Mosquitto refusing anonymous clients, checking the cloud-written files."""
    extra = [f"password_file {password_file}", f"acl_file {acl_file}"]
    tls_port = None
    if pki is not None:
        tls_port = devservers.free_port()
        extra += [
            f"listener {tls_port} {devservers.LOOPBACK}",
            f"cafile {pki.ca}",
            f"certfile {pki.cert}",
            f"keyfile {pki.key}",
        ]
    try:
        context = devservers.mosquitto("\n".join(extra), allow_anonymous=False)
        server = context.__enter__()
    except devservers.ServerUnavailable as exc:
        missing(str(exc))
    try:
        if tls_port is not None:
            devservers.wait_for_port(tls_port, proc=server.proc)
        yield AuthBroker(server, tls_port)
    finally:
        context.__exit__(None, None, None)


async def write_broker_files(settings: CloudSettings) -> None:
    """What the cloud would write at start-up: the files from the (migrated) database."""
    await migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            await BrokerFiles(settings).write(conn)
    finally:
        await engine.dispose()


def client(port: int, username: str, password: str, **kwargs: object) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=username,
        password=password,
        identifier=f"test-{username}-{uuid.uuid4().hex[:8]}",
        timeout=10,
        **kwargs,
    )  # type: ignore[arg-type]


async def next_message(messages: AsyncIterator[aiomqtt.Message]) -> aiomqtt.Message:
    async with asyncio.timeout(10):
        return await anext(messages)


# --- unit: the file formats -----------------------------------------------------------------


def test_password_hash_is_the_one_mosquitto_passwd_writes(tmp_path: Path) -> None:
    binary = shutil.which("mosquitto_passwd")
    if binary is None:
        missing("mosquitto_passwd")
    pwfile = tmp_path / "passwd"
    subprocess.run([binary, "-c", "-b", str(pwfile), "node-a", "s3cret"], check=True)
    _, hashed = pwfile.read_text().strip().split(":", 1)
    kind, iterations, salt_b64, _ = hashed.split("$")[1:]
    assert (kind, iterations) == ("7", "101")
    import base64

    assert hash_password("s3cret", salt=base64.b64decode(salt_b64)) == hashed
    assert verify_password("s3cret", hashed) and not verify_password("s3cret!", hashed)


def test_password_file_refuses_usernames_that_would_break_the_line_format() -> None:
    with pytest.raises(ValueError):
        render_password_file([("evil:admin", hash_password("x"))])


def test_acl_lets_nodes_write_only_their_own_channels_and_read_only_their_commands() -> None:
    acl = render_acl_file(CLOUD_USER)
    assert f"pattern write {ROOT}/%u/telemetry/#" in acl
    assert f"pattern read {ROOT}/%u/commands/#" in acl
    assert f"pattern write {ROOT}/%u/commands/#" not in acl
    assert acl.index("pattern") < acl.index(f"user {CLOUD_USER}")


# --- a real broker enforcing the files ------------------------------------------------------


@dataclass
class Deployment:
    settings: CloudSettings
    broker: AuthBroker
    passwords: dict[str, str]
    pki: Pki


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    """Two enrolled nodes (A, B) and a broker checking the files the cloud wrote for them."""
    settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/cloud.sqlite3",
        mosquitto_password_file=tmp_path / "broker" / "passwd",
        mosquitto_acl_file=tmp_path / "broker" / "acl",
        mosquitto_pid_file=tmp_path / "broker" / "mosquitto.pid",
        cloud_mqtt_username=CLOUD_USER,
        cloud_mqtt_password=CLOUD_PASSWORD,  # type: ignore[arg-type]
    )
    await migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    files = BrokerFiles(settings)
    passwords = {}
    try:
        for node in ("node-a", "node-b"):
            async with engine.begin() as conn:
                issued = await create_token(conn, settings, node_id=node, ttl_s=60, config={})
                enrolled = await enrol(conn, settings, token=issued.token, hardware_id=None)
                await files.write(conn)
            passwords[node] = enrolled.mqtt_password
    finally:
        await engine.dispose()
    pki = make_test_pki(tmp_path / "pki")
    assert settings.mosquitto_password_file is not None
    assert settings.mosquitto_acl_file is not None
    with auth_broker(settings.mosquitto_password_file, settings.mosquitto_acl_file, pki) as broker:
        assert settings.mosquitto_pid_file is not None
        broker.write_pid(settings.mosquitto_pid_file)
        yield Deployment(settings, broker, passwords, pki)


async def test_cloud_written_files_are_private_and_name_every_enrolled_node(
    deployment: Deployment,
) -> None:
    pwfile = deployment.settings.mosquitto_password_file
    assert pwfile is not None
    users = [line.split(":", 1)[0] for line in pwfile.read_text().splitlines()]
    assert users == [CLOUD_USER, "node-a", "node-b"]
    assert stat.S_IMODE(pwfile.stat().st_mode) & 0o007 == 0


async def test_anonymous_and_wrong_password_clients_are_refused(deployment: Deployment) -> None:
    port = deployment.broker.port
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", port, identifier="anon", timeout=10):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with client(port, "node-a", deployment.passwords["node-b"]):
            pass


async def test_node_publishes_on_its_own_topics_but_not_as_another_node(
    deployment: Deployment,
) -> None:
    port, pw = deployment.broker.port, deployment.passwords
    async with (
        client(port, CLOUD_USER, CLOUD_PASSWORD) as cloud,
        client(port, "node-a", pw["node-a"]) as node_a,
    ):
        await cloud.subscribe("ruang/v1/#", qos=1)
        allowed = [
            f"{ROOT}/node-a/state",
            f"{ROOT}/node-a/events/check_in",
            f"{ROOT}/node-a/telemetry/presence",
            f"{ROOT}/node-a/backlog/presence",
        ]
        for topic in allowed:
            await node_a.publish(topic, b"mine", qos=1)
        messages = aiter(cloud.messages)
        received = [str((await next_message(messages)).topic) for _ in allowed]
        assert sorted(received) == sorted(allowed)

        # A denied publish never reaches a subscriber. Mosquitto 2.0.11 also drops
        # the publisher's connection over it, so the marker that proves nothing got
        # through goes on the same connection when it survives (per-connection
        # order), else on a new one (the broker has then handled the forbidden one).
        forbidden = [
            f"{ROOT}/node-b/state",
            f"{ROOT}/node-b/events/check_in",
            f"{ROOT}/node-a/commands/led",
            f"{ROOT}/node-b/commands/led",
            "ruang/v1/other",
        ]
        for n, topic in enumerate(forbidden):
            marker = f"marker {n}".encode()
            await publish_forbidden_then_marker(port, pw["node-a"], topic, marker)
            first = await next_message(messages)
            assert (str(first.topic), first.payload) == (
                f"{ROOT}/node-a/telemetry/marker",
                marker,
            ), topic


async def publish_forbidden_then_marker(
    port: int, password: str, topic: str, marker: bytes
) -> None:
    marker_topic = f"{ROOT}/node-a/telemetry/marker"
    try:
        async with client(port, "node-a", password) as node_a:
            await node_a.publish(topic, b"forged", qos=0)
            await node_a.publish(marker_topic, marker, qos=1)
            return
    except aiomqtt.MqttError:
        pass
    async with client(port, "node-a", password) as node_a:
        await node_a.publish(marker_topic, marker, qos=1)


async def test_node_cannot_read_another_nodes_commands(deployment: Deployment) -> None:
    port, pw = deployment.broker.port, deployment.passwords
    async with (
        client(port, CLOUD_USER, CLOUD_PASSWORD) as cloud,
        client(port, "node-a", pw["node-a"]) as node_a,
    ):
        # Whether the broker refuses the subscription or filters delivery, nothing of B's comes.
        with contextlib.suppress(aiomqtt.MqttError):
            await node_a.subscribe(f"{ROOT}/node-b/commands/#", qos=1)
        await node_a.subscribe(f"{ROOT}/node-a/commands/#", qos=1)
        await cloud.publish(f"{ROOT}/node-b/commands/led", b"for b", qos=1)
        await cloud.publish(f"{ROOT}/node-a/commands/led", b"marker for a", qos=1)
        first = await next_message(aiter(node_a.messages))
        assert (str(first.topic), first.payload) == (f"{ROOT}/node-a/commands/led", b"marker for a")


async def test_revoked_node_cannot_connect_once_the_broker_reloaded(
    deployment: Deployment,
) -> None:
    port, pw, settings = deployment.broker.port, deployment.passwords, deployment.settings
    async with client(port, "node-a", pw["node-a"]):
        pass  # connects while enrolled

    engine = make_engine(settings.database_url)
    files = BrokerFiles(settings)
    try:
        async with engine.begin() as conn:
            await revoke(conn, "node-a", datetime.now(UTC))
            await files.write(conn)
    finally:
        await engine.dispose()
    assert files.reload()

    async def refused() -> bool:
        try:
            async with client(port, "node-a", pw["node-a"]):
                return False
        except aiomqtt.MqttError:
            return True

    await eventually(refused, what="revoked node-a refused")
    async with client(port, "node-b", pw["node-b"]):
        pass  # the others keep working


async def test_tls_client_trusting_the_deployment_ca_connects(deployment: Deployment) -> None:
    tls_port = deployment.broker.tls_port
    assert tls_port is not None
    pki_ca = deployment.pki.ca
    for host in ("localhost", "127.0.0.1"):
        async with aiomqtt.Client(
            host,
            tls_port,
            username=CLOUD_USER,
            password=CLOUD_PASSWORD,
            tls_context=client_tls_context(pki_ca),
            timeout=10,
        ) as c:
            await c.publish(f"{ROOT}/node-a/commands/led", b"over tls", qos=1)


async def test_tls_client_without_the_deployment_ca_fails_verification(
    deployment: Deployment,
) -> None:
    tls_port = deployment.broker.tls_port
    assert tls_port is not None
    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        async with aiomqtt.Client(
            "localhost",
            tls_port,
            username=CLOUD_USER,
            password=CLOUD_PASSWORD,
            tls_context=client_tls_context(None),
            timeout=10,
        ):
            pass


def test_tls_context_verifies_the_broker_and_its_name(tmp_path: Path) -> None:
    context = client_tls_context(make_test_pki(tmp_path).ca)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
