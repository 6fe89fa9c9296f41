"""Real servers on free loopback ports, for tests, benchmarks and local runs.

Each helper is a context manager that starts a real Mosquitto, VictoriaMetrics
or PostgreSQL in a temporary directory, waits until it answers, yields where to
reach it and stops it (and removes its data) on exit. Nothing here listens on
anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = "127.0.0.1"


class ServerUnavailable(RuntimeError):
    """A server binary is missing on this machine (install its Debian package)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def find_binary(name: str, *extra_globs: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    for pattern in extra_globs:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[-1]
    raise ServerUnavailable(f"{name} not found: install its Debian package (make system-deps)")


def wait_for_port(
    port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout} s")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Mosquitto:
    """A running Mosquitto; `stop()`/`start()` let fault tests restart it on the same port."""

    port: int
    workdir: Path
    config_extra: str = ""
    proc: subprocess.Popen[bytes] | None = None
    # False for tests of the broker's own authentication (password_file, acl_file).
    allow_anonymous: bool = True
    # True keeps sessions and queued QoS 1 messages in `workdir` across stop()/start(),
    # saved on every change so that even a SIGKILL loses as little as Mosquitto allows.
    persistence: bool = False

    @property
    def url(self) -> str:
        return f"mqtt://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def start(self) -> None:
        binary = find_binary("mosquitto")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    # Run as the invoking user so the temp dir stays writable when we are root.
                    "user root" if os.geteuid() == 0 else "",
                    f"listener {self.port} {LOOPBACK}",
                    f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
                    *self._persistence_lines(),
                    f"log_dest file {self.log_path}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    # Benchmarks and fault tests queue large backlogs for persistent sessions.
                    "max_queued_messages 0",
                    "max_inflight_messages 0",
                    # As deployed (deploy/mosquitto/dynsec.conf): without it Nagle holds an
                    # event behind the telemetry stream until the subscriber's delayed ACK.
                    "set_tcp_nodelay true",
                    self.config_extra,
                ]
            )
            + "\n"
        )
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, proc=self.proc)

    def _persistence_lines(self) -> list[str]:
        if not self.persistence:
            return ["persistence false"]
        store = self.workdir / "store"
        store.mkdir(exist_ok=True)
        return [
            "persistence true",
            f"persistence_location {store}/",
            "autosave_on_changes true",
            "autosave_interval 1",
        ]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            _stop(self.proc, sig)
            self.proc = None


@contextlib.contextmanager
def mosquitto(
    config_extra: str = "", *, allow_anonymous: bool = True, persistence: bool = False
) -> Iterator[Mosquitto]:
    with tempfile.TemporaryDirectory(prefix="ruang-mosquitto-") as tmp:
        broker = Mosquitto(
            port=free_port(),
            workdir=Path(tmp),
            config_extra=config_extra,
            allow_anonymous=allow_anonymous,
            persistence=persistence,
        )
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


DYNSEC_PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)


def dynsec_plugin() -> str:
    """Path of Mosquitto's dynamic-security plugin (Debian ships it with mosquitto 2)."""
    for pattern in DYNSEC_PLUGIN_GLOBS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[-1]
    raise ServerUnavailable("mosquitto_dynamic_security.so not found: install mosquitto 2")


@contextlib.contextmanager
def mosquitto_dynsec(
    admin_user: str, admin_password: str, config_extra: str = ""
) -> Iterator[Mosquitto]:
    """Mosquitto whose accounts live in the dynamic-security plugin, refusing anonymous
    clients. Its only client is `admin_user`, holding the plugin's admin role, as
    `mosquitto_ctrl dynsec init` makes it; the plugin's JSON survives stop()/start()."""
    plugin = dynsec_plugin()
    ctrl = find_binary("mosquitto_ctrl")
    with tempfile.TemporaryDirectory(prefix="ruang-mosquitto-") as tmp:
        state = Path(tmp) / "dynamic-security.json"
        subprocess.run(
            [ctrl, "dynsec", "init", str(state), admin_user, admin_password],
            check=True,
            capture_output=True,
        )
        broker = Mosquitto(
            port=free_port(),
            workdir=Path(tmp),
            config_extra=f"plugin {plugin}\nplugin_opt_config_file {state}\n{config_extra}",
            allow_anonymous=False,
        )
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


@dataclass(frozen=True)
class VictoriaMetrics:
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def force_flush(self) -> None:
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).read()

    def export(self, match: str) -> list[dict[str, object]]:
        """Every stored sample of the series matching `match` (a PromQL selector)."""
        import json
        import urllib.parse

        self.force_flush()
        query = urllib.parse.urlencode({"match[]": match})
        body = urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10).read()
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]

    def query(self, promql: str) -> list[dict[str, object]]:
        """The instant vector of `promql` now (`/api/v1/query`, after a flush)."""
        import json
        import urllib.parse

        self.force_flush()
        query = urllib.parse.urlencode({"query": promql})
        body = urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=10).read()
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {answer}")
        result: list[dict[str, object]] = answer["data"]["result"]
        return result


@contextlib.contextmanager
def victoria_metrics(scrape_config: Path | None = None) -> Iterator[VictoriaMetrics]:
    """VictoriaMetrics on a free port; with `scrape_config` (Prometheus `scrape_configs`
    YAML) it also scrapes the targets listed there, at the file's own interval."""
    binary = find_binary("victoria-metrics", "/usr/bin/victoria-metrics*")
    port = free_port()
    scraping = [] if scrape_config is None else [f"-promscrape.config={scrape_config}"]
    with tempfile.TemporaryDirectory(prefix="ruang-vm-") as tmp:
        proc = subprocess.Popen(
            [
                binary,
                *scraping,
                f"-storageDataPath={tmp}",
                f"-httpListenAddr={LOOPBACK}:{port}",
                "-retentionPeriod=100y",
                # Make fresh samples queryable at once (default hides the last 30 s).
                "-search.latencyOffset=0s",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, proc=proc)
            vm = VictoriaMetrics(port)
            deadline = time.monotonic() + 15
            while True:
                try:
                    urllib.request.urlopen(f"{vm.url}/health", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield vm
        finally:
            _stop(proc)


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str
    database: str

    @property
    def url(self) -> str:
        """SQLAlchemy async URL."""
        return f"postgresql+asyncpg://{self.user}@{LOOPBACK}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{LOOPBACK}:{self.port}/{self.database}"

    def create_database(self, name: str) -> str:
        """Creates an empty database and returns its SQLAlchemy URL."""
        psql = find_binary("psql", "/usr/lib/postgresql/*/bin/psql")
        subprocess.run(
            [
                psql,
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                self.database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qc",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
            capture_output=True,
        )
        return f"postgresql+asyncpg://{self.user}@{LOOPBACK}:{self.port}/{name}"


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    bindir_glob = "/usr/lib/postgresql/*/bin"
    initdb = find_binary("initdb", f"{bindir_glob}/initdb")
    bindir = Path(initdb).parent
    server = bindir / "postgres"
    if not server.exists():
        server = Path(find_binary("postgres", f"{bindir_glob}/postgres"))
    port = free_port()
    # PostgreSQL refuses to run as root: run it as the `postgres` system user then.
    as_root = os.geteuid() == 0
    run_as: dict[str, object] = (
        {"user": "postgres", "group": "postgres", "extra_groups": []} if as_root else {}
    )
    user = "postgres" if as_root else (os.environ.get("USER") or "postgres")
    with tempfile.TemporaryDirectory(prefix="ruang-pg-") as tmp:
        data = Path(tmp) / "data"
        sock = Path(tmp) / "sock"
        sock.mkdir()
        if as_root:
            shutil.chown(tmp, "postgres")
            shutil.chown(sock, "postgres")
        subprocess.run(
            [
                initdb,
                "-D",
                str(data),
                "-U",
                user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            **run_as,  # type: ignore[call-overload]
        )
        proc = subprocess.Popen(  # type: ignore[call-overload]
            [
                str(server),
                "-D",
                str(data),
                "-h",
                LOOPBACK,
                "-p",
                str(port),
                "-k",
                str(sock),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **run_as,
        )
        try:
            wait_for_port(port, timeout=30, proc=proc)
            pg = Postgres(port=port, user=user, database="postgres")
            isready = bindir / "pg_isready"
            deadline = time.monotonic() + 30
            while isready.exists():
                rc = subprocess.run(
                    [str(isready), "-h", LOOPBACK, "-p", str(port), "-q"], check=False
                ).returncode
                if rc == 0:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("PostgreSQL did not become ready")
                time.sleep(0.1)
            yield pg
        finally:
            # SIGINT is PostgreSQL's "fast shutdown".
            _stop(proc, signal.SIGINT)


# The load-balancing rules shared by the dev server and deploy/haproxy.cfg (a test
# holds them equal): HTTP mode, round-robin, `/healthz` checks, and retries that a
# killed replica's idempotent requests survive.
HAPROXY_DEFAULTS = """\
    mode http
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 60s
    # Above the 15 s keep-alive comments of the live map streams (SSE).
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 30s
    # A failed attempt is retried up to 3 times, each on another replica.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504
"""
HAPROXY_BACKEND = """\
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
    # Only a request that never reached a replica (connection refused) is replayed
    # when it is not a GET/HEAD: a POST a replica received may have committed.
    http-request disable-l7-retry unless METH_GET
    default-server check inter 1s fall 2 rise 2
"""


def haproxy_config(port: int, backends: list[int], admin_socket: Path | None = None) -> str:
    """The HAProxy configuration of the dev server: the deploy file's rules, loopback ports,
    and (like the deploy file) a runtime API socket when `admin_socket` is given."""
    servers = "".join(f"    server api-{i} {LOOPBACK}:{p}\n" for i, p in enumerate(backends))
    stats = (
        "" if admin_socket is None else f"    stats socket {admin_socket} mode 600 level admin\n"
    )
    return (
        f"global\n    maxconn 4096\n{stats}\n"
        f"defaults\n{HAPROXY_DEFAULTS}\n"
        f"frontend ruang\n    bind {LOOPBACK}:{port}\n    default_backend ruang_api\n\n"
        f"backend ruang_api\n{HAPROXY_BACKEND}{servers}"
    )


@dataclass(frozen=True)
class HAProxy:
    port: int
    config: Path
    pid: int
    admin_socket: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self, line: str) -> str:
        """One command of HAProxy's runtime API (`set server ruang_api/api-0 state drain`)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.admin_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()


@contextlib.contextmanager
def haproxy(backends: list[int]) -> Iterator[HAProxy]:
    """HAProxy on a free port balancing HTTP over the loopback `backends` ports."""
    binary = find_binary("haproxy")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ruang-haproxy-") as tmp:
        config = Path(tmp) / "haproxy.cfg"
        admin = Path(tmp) / "admin.sock"
        config.write_text(haproxy_config(port, backends, admin))
        log = (Path(tmp) / "haproxy.log").open("wb")
        # -db: stay in the foreground (no daemon), so the process is ours to stop.
        proc = subprocess.Popen(
            [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, proc=proc)
            yield HAProxy(port=port, config=config, pid=proc.pid, admin_socket=admin)
        finally:
            # SIGTERM is HAProxy's hard stop: open keep-alive connections are closed.
            _stop(proc)
            log.close()


# --- a 3-node NATS Server cluster speaking MQTT (the clustered broker tier) ------------------

# The reference node config the cluster is started from (docs/operations.md, "Broker
# cluster"): what differs per node comes from RUANG_NATS_* environment variables.
NATS_NODE_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "nats" / "ruang-node.conf"


@dataclass(frozen=True)
class LoopbackPki:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost signed by it."""

    ca: Path
    cert: Path
    key: Path


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def loopback_pki(directory: Path) -> LoopbackPki:
    """Writes a fresh CA and loopback server certificate (EC P-256, one day) into `directory`.

    Made with `cryptography` rather than the openssl CLI, which a minimal Debian lacks.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ruang test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = LoopbackPki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.key.chmod(0o600)
    return pki


@dataclass
class NatsNode:
    """One nats-server of a `NatsCluster`; `stop(signal.SIGKILL)` kills it outright."""

    name: str
    mqtt_port: int
    client_port: int
    monitor_port: int
    cluster_port: int
    workdir: Path
    routes: str
    # The MQTT listener's certificate and key (the reference config requires TLS).
    tls: LoopbackPki
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtts://{LOOPBACK}:{self.mqtt_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "nats.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def environment(self) -> dict[str, str]:
        return {
            "RUANG_NATS_NAME": self.name,
            "RUANG_NATS_LISTEN": f"{LOOPBACK}:{self.client_port}",
            "RUANG_NATS_MONITOR": f"{LOOPBACK}:{self.monitor_port}",
            "RUANG_NATS_STORE": str(self.workdir / "jetstream"),
            "RUANG_NATS_CLUSTER_LISTEN": f"{LOOPBACK}:{self.cluster_port}",
            "RUANG_NATS_ROUTES": self.routes,
            "RUANG_NATS_MQTT_LISTEN": f"{LOOPBACK}:{self.mqtt_port}",
            "RUANG_NATS_MQTT_CERT": str(self.tls.cert),
            "RUANG_NATS_MQTT_KEY": str(self.tls.key),
        }

    def start(self) -> None:
        binary = find_binary("nats-server")
        self.proc = subprocess.Popen(
            [binary, "-c", str(NATS_NODE_CONFIG), "-l", str(self.log_path)],
            env={**os.environ, **self.environment()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.mqtt_port, proc=self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            _stop(self.proc, sig)
            self.proc = None

    def monitor(self, path: str) -> dict[str, object]:
        """A JSON page of the node's monitoring port (`/jsz`, `/routez`)."""
        url = f"http://{LOOPBACK}:{self.monitor_port}{path}"
        with urllib.request.urlopen(url, timeout=2) as response:
            page: dict[str, object] = json.loads(response.read())
        return page

    def ready(self) -> bool:
        """Routed to the other nodes, with a JetStream meta leader the node agrees on."""
        try:
            routes = self.monitor("/routez").get("num_routes", 0)
            meta = self.monitor("/jsz").get("meta_cluster")
        except (OSError, ValueError):
            return False
        return (
            isinstance(routes, int)
            and routes >= 1
            and isinstance(meta, dict)
            and bool(meta.get("leader"))
        )


@dataclass
class NatsCluster:
    nodes: list[NatsNode]
    # Clients trust this CA for the nodes' mqtts:// listeners (RUANG_MQTT_CA_FILE).
    ca: Path

    @property
    def url(self) -> str:
        """Every node's MQTT URL, comma-separated: what edge and cloud take as mqtt_url."""
        return ",".join(node.url for node in self.nodes)

    def node_on(self, mqtt_port: int) -> NatsNode:
        return next(node for node in self.nodes if node.mqtt_port == mqtt_port)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every running node is routed and sees a JetStream meta leader."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(node.ready() for node in self.nodes if node.running):
                return
            time.sleep(0.1)
        raise TimeoutError(f"NATS cluster not ready after {timeout} s")


@contextlib.contextmanager
def nats_cluster(size: int = 3) -> Iterator[NatsCluster]:
    """`size` nats-server nodes clustered on loopback, MQTT on each, JetStream replicated.

    Started from deploy/nats/ruang-node.conf, each with its own store and ports;
    yields once the cluster has a JetStream meta leader; stops every node on exit.
    """
    find_binary("nats-server")  # a missing binary fails here, before any port is taken
    with tempfile.TemporaryDirectory(prefix="ruang-nats-") as tmp:
        pki = loopback_pki(Path(tmp) / "pki")
        cluster_ports = [free_port() for _ in range(size)]
        routes = "[" + ", ".join(f"nats-route://{LOOPBACK}:{p}" for p in cluster_ports) + "]"
        nodes = []
        for i, cluster_port in enumerate(cluster_ports):
            workdir = Path(tmp) / f"node-{i}"
            workdir.mkdir()
            nodes.append(
                NatsNode(
                    name=f"ruang-broker-{i}",
                    mqtt_port=free_port(),
                    client_port=free_port(),
                    monitor_port=free_port(),
                    cluster_port=cluster_port,
                    workdir=workdir,
                    routes=routes,
                    tls=pki,
                )
            )
        cluster = NatsCluster(nodes, pki.ca)
        try:
            for node in nodes:
                node.start()
            cluster.wait_ready()
            yield cluster
        finally:
            for node in nodes:
                node.stop()
