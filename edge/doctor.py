"""`ruang edge doctor`: a technician's checklist for one edge node.

Each check prints PASS, WARN or FAIL with what to do next; the exit code is 0
when nothing FAILed. Checks: the config file, every configured serial device
(opened and asked who it is, as `ruang edge devices --probe` does), the
Bluetooth adapter when BLE is on, the broker (reachable, credentials accepted,
TLS certificate trusted), the clock against the cloud's HTTP Date header, free
disk in state_dir, the outbox, the watchdog table of the agent's last status,
and the stored snapshot and remote config.

Probing writes to the serial ports (see edge/discovery.py); run the doctor with
the agent stopped (`systemctl stop ruang-edge`) so both do not talk to a unit.
"""

from __future__ import annotations

import asyncio
import email.utils
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiomqtt

from ruang import contract
from ruang.mqtt_url import BrokerAddress, parse_broker_urls
from ruang.tls import client_tls_context

from .discovery import DeviceKind, probe
from .outbox import FILE_NAME as OUTBOX_FILE
from .outbox import Outbox
from .remote_config import RemoteConfigStore
from .settings import ConfigError, EdgeSettings, load_edge_settings

Level = Literal["PASS", "WARN", "FAIL"]
BROKER_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 1.0
BLE_TIMEOUT_S = 5.0
DISK_WARN_BYTES = 500_000_000
DISK_FAIL_BYTES = 50_000_000
CLOCK_WARN_S = 5.0
# Snapshots are valid for hours and tokens for minutes: past this, things break.
CLOCK_FAIL_S = 60.0
OUTBOX_WARN_DEPTH = 10_000

_KIND_NAMES: dict[DeviceKind, str] = {
    "deskunit": "desk unit",
    "ld2410": "LD2410 radar",
    "gps": "GPS receiver",
}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    level: Level
    detail: str
    advice: str = ""

    def line(self) -> str:
        text = f"{self.level}  {self.name}: {self.detail}"
        if self.advice and self.level != "PASS":
            text += f"\n      -> {self.advice}"
        return text


# --- config ---------------------------------------------------------------------------------


def check_config(path: Path | None) -> tuple[Check, EdgeSettings | None]:
    try:
        settings = load_edge_settings(path)
    except ConfigError as exc:
        return Check(
            "config",
            "FAIL",
            str(exc),
            "fix the file (or RUANG_* variable) named "
            "above; `ruang edge run` refuses to start until it is valid",
        ), None
    where = str(path) if path else "(environment only)"
    return Check("config", "PASS", f"{where} is valid (node {settings.node_id})"), settings


# --- serial devices -------------------------------------------------------------------------


async def check_port(label: str, port: str, expected: DeviceKind) -> Check:
    name = f"{label} on {port}"
    if not port.startswith("socket://") and not Path(port).exists():
        return Check(
            name,
            "FAIL",
            "port does not exist",
            "check the cable and the USB hub; `ruang edge devices` lists what is "
            "attached; stable names come from the udev rules (docs/devices/udev.md)",
        )
    result = await probe(port, PROBE_TIMEOUT_S)
    if result.kind == expected:
        return Check(name, "PASS", result.detail)
    if result.kind is None:
        if result.detail.startswith("cannot open"):
            return Check(
                name,
                "FAIL",
                result.detail,
                "is another program using it (stop the agent first)? does the "
                "`ruang` user belong to the dialout group?",
            )
        return Check(
            name,
            "FAIL",
            f"opened, but no {_KIND_NAMES[expected]} answered",
            "check the device's power and wiring (TX/RX), then that it is the "
            "device this port is configured for",
        )
    return Check(
        name,
        "FAIL",
        f"a {_KIND_NAMES[result.kind]} answers here, not a {_KIND_NAMES[expected]}",
        "cables are probably swapped: fix the port in the config or re-plug",
    )


async def check_devices(settings: EdgeSettings) -> list[Check]:
    jobs: list[tuple[str, str, DeviceKind]] = []
    jobs += [(f"desk unit {u.desk}", u.port, "deskunit") for u in settings.desk_units]
    jobs += [(f"radar {r.device}", r.port, "ld2410") for r in settings.radars]
    jobs += [(f"gps {g.device}", g.port, "gps") for g in settings.gps]
    if not jobs:
        return [
            Check(
                "serial devices",
                "WARN",
                "none configured",
                "add desk_units/radars/gps to the config, or push them from the cloud",
            )
        ]
    # One by one: the output follows the config, and ports on one hub are not raced.
    return [await check_port(label, port, kind) for label, port, kind in jobs]


# --- Bluetooth ------------------------------------------------------------------------------

ScannerFactory = Callable[..., Any]


async def check_bluetooth(settings: EdgeSettings, factory: ScannerFactory | None = None) -> Check:
    if not settings.ble.enabled:
        return Check("bluetooth", "PASS", "BLE disabled in the config; not checked")
    from bleak import BleakScanner
    from bleak.exc import BleakError

    make = factory or BleakScanner
    adapters = [s.adapter for s in settings.ble.scanners if s.adapter] or ["hci0"]
    problems = []
    for adapter in adapters:
        try:
            async with asyncio.timeout(BLE_TIMEOUT_S):
                scanner = make(bluez={"adapter": adapter})
                await scanner.start()
                await scanner.stop()
        except (OSError, TimeoutError) as exc:
            # bleak raises FileNotFoundError/OSError when there is no D-Bus socket or BlueZ.
            problems.append(f"{adapter}: no Bluetooth adapter or D-Bus ({exc or 'timeout'})")
        except BleakError as exc:
            problems.append(f"{adapter}: {exc}")
    if problems:
        return Check(
            "bluetooth",
            "FAIL",
            "; ".join(problems),
            "check `systemctl status bluetooth` and `bluetoothctl list`; on a Pi, "
            "`rfkill unblock bluetooth`; or set ble.enabled: false",
        )
    return Check("bluetooth", "PASS", f"scan started and stopped on {', '.join(adapters)}")


# --- broker ---------------------------------------------------------------------------------


def classify_broker_error(exc: BaseException) -> tuple[str, str]:
    """(what went wrong, what to do) for a failed broker connection."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, aiomqtt.MqttCodeError) and exc.rc in (4, 5, 134, 135):
        return (
            f"not authorised: broker refused the credentials ({text})",
            "check mqtt_username/mqtt_password (RUANG_MQTT_PASSWORD in /etc/ruang/edge.env);"
            " if the node was revoked, enrol it again (`ruang edge enroll`)",
        )
    if "certificate" in lowered or "ssl" in lowered or "tls" in lowered:
        return (
            f"TLS verification failed ({text})",
            "mqtt_ca_file must be the CA that signed the broker's certificate and the URL "
            "host must match the certificate's name; check the clock too",
        )
    if "refused" in lowered:
        return (
            f"connection refused ({text})",
            "the broker is not listening on that host/port: check mqtt_url and that the "
            "broker runs (`systemctl status mosquitto` on the broker)",
        )
    if "timed out" in lowered or isinstance(exc, TimeoutError):
        return (
            f"no answer within {BROKER_TIMEOUT_S:g} s ({text or 'timeout'})",
            "a firewall may drop the traffic, or the host is wrong/unreachable",
        )
    if "name or service" in lowered or "resolution" in lowered or "nodename" in lowered:
        return (f"host name does not resolve ({text})", "check mqtt_url and DNS")
    return (f"cannot connect ({type(exc).__name__}: {text})", "check mqtt_url and the network")


async def check_broker(settings: EdgeSettings, broker: BrokerAddress | None = None) -> Check:
    """Connects to `broker` (default: the first of mqtt_url) as this node would."""
    broker = broker or parse_broker_urls(settings.mqtt_url)[0]
    password = settings.mqtt_password
    name = f"broker {broker.host}:{broker.port}"
    try:
        client = aiomqtt.Client(
            broker.host,
            broker.port,
            username=settings.mqtt_username or broker.username,
            password=password.get_secret_value() if password else broker.password,
            # Not the agent's client id: connecting must not kick a running agent off.
            identifier=f"ruang-doctor-{settings.node_id}-{contract.new_message_id()[:8]}",
            protocol=aiomqtt.ProtocolVersion.V311,
            timeout=BROKER_TIMEOUT_S,
            tls_context=client_tls_context(settings.mqtt_ca_file) if broker.tls else None,
        )
        async with asyncio.timeout(BROKER_TIMEOUT_S), client:
            pass
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        detail, advice = classify_broker_error(exc)
        return Check(name, "FAIL", detail, advice)
    how = "TLS, " if broker.tls else ""
    who = settings.mqtt_username or broker.username or "anonymous"
    return Check(name, "PASS", f"connected ({how}as {who})")


# --- clock ----------------------------------------------------------------------------------

HttpDate = Callable[[str], Awaitable[str | None]]


async def _http_date(url: str) -> str | None:
    import httpx

    async with httpx.AsyncClient(timeout=5.0) as http:
        response = await http.get(url.rstrip("/") + "/healthz")
        date: str | None = response.headers.get("date")
        return date


async def check_clock(cloud_url: str | None, fetch_date: HttpDate = _http_date) -> Check:
    if not cloud_url:
        return Check("clock", "WARN", "not checked", "pass --cloud URL to compare with the cloud")
    try:
        before = time.time()
        header = await fetch_date(cloud_url)
        local = (before + time.time()) / 2
    except Exception as exc:
        return Check(
            "clock",
            "WARN",
            f"cloud not reachable ({type(exc).__name__}: {exc})",
            "check the --cloud URL and the network",
        )
    if not header:
        return Check("clock", "WARN", "the cloud sent no Date header", "")
    try:
        cloud = email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return Check("clock", "WARN", f"unreadable Date header {header!r}", "")
    skew = local - cloud
    # The Date header has whole seconds: under a second of difference is noise.
    detail = f"local clock is {skew:+.1f} s off the cloud's"
    advice = "check NTP: `timedatectl status`, `systemctl status systemd-timesyncd`"
    if abs(skew) > CLOCK_FAIL_S:
        return Check("clock", "FAIL", detail, advice + "; snapshots and TLS depend on the time")
    if abs(skew) > CLOCK_WARN_S:
        return Check("clock", "WARN", detail, advice)
    return Check("clock", "PASS", detail)


# --- state_dir: disk, outbox, snapshot, remote config ---------------------------------------


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(state_dir: Path) -> Check:
    free = shutil.disk_usage(_existing(state_dir)).free
    detail = f"{free / 1e6:,.0f} MB free for {state_dir}"
    advice = "free space (old logs: `journalctl --vacuum-size=100M`) or use a bigger SD card"
    if free < DISK_FAIL_BYTES:
        return Check("disk", "FAIL", detail, advice + "; the outbox cannot store events")
    if free < DISK_WARN_BYTES:
        return Check("disk", "WARN", detail, advice)
    return Check("disk", "PASS", detail)


def check_outbox(settings: EdgeSettings) -> Check:
    if not (settings.state_dir / OUTBOX_FILE).exists():
        return Check("outbox", "PASS", "empty (the agent has not run here yet)")
    try:
        outbox = Outbox.in_dir(settings.state_dir, max_mb=settings.outbox_max_mb)
    except Exception as exc:
        return Check(
            "outbox",
            "FAIL",
            f"cannot open: {exc}",
            "check permissions of state_dir; see docs/edge-outbox.md",
        )
    try:
        health = outbox.health()
        integrity = outbox.integrity()
        full = outbox.size_bytes > outbox.max_bytes
    finally:
        outbox.close()
    depth = health["outbox_depth"]
    detail = (
        f"{depth} message(s) waiting, {health['outbox_awaiting_ack']} event(s) awaiting the "
        f"cloud's ack, {health['outbox_bytes'] / 1e6:.1f} MB"
    )
    if health.get("outbox_lost"):
        detail += f"; recovered from damage, lost up to {health['outbox_lost']}"
    if integrity is not None:
        return Check(
            "outbox",
            "FAIL",
            f"{detail}; damaged: {integrity}",
            "stop the agent; it salvages the file on its next start",
        )
    if full or health.get("outbox_alarm"):
        return Check(
            "outbox",
            "FAIL",
            f"{detail}; full: only events left, telemetry shed",
            "the uplink has been down a long time: fix the broker check above",
        )
    if depth > OUTBOX_WARN_DEPTH:
        return Check("outbox", "WARN", detail, "the node is (or was) offline: check the broker")
    return Check("outbox", "PASS", detail)


def check_watchdog(settings: EdgeSettings) -> Check:
    """The watchdog table from the agent's last status file (the agent may be stopped)."""
    from .status import read_status

    status = read_status(settings.state_dir)
    table = (status or {}).get("watchdog") or []
    if not table:
        return Check("watchdog", "PASS", "no watchdog table yet (the agent has not run here)")
    bad = [w for w in table if w.get("state") != "ok"]
    restarted = [w for w in table if w.get("restarts")]
    detail = f"{len(table) - len(bad)} of {len(table)} subsystems ok at the last status"
    if bad:
        names = ", ".join(f"{w.get('subsystem')} ({w.get('detail') or w.get('state')})"
                          for w in bad)  # fmt: skip
        return Check(
            "watchdog",
            "FAIL",
            f"{detail}; stalled: {names}",
            "see `ruang edge status` and the journal for that subsystem",
        )
    if restarted:
        names = ", ".join(f"{w.get('subsystem')} x{w.get('restarts')}" for w in restarted)
        return Check(
            "watchdog",
            "WARN",
            f"{detail}; restarted by the watchdog: {names}",
            "a device or the uplink stalled; check its cable, power or the broker",
        )
    return Check("watchdog", "PASS", detail)


def check_snapshot(settings: EdgeSettings, now: float) -> Check:
    from .snapshot import SnapshotStore, load_trusted_keys

    key_paths = [settings.snapshot_public_key, *settings.snapshot_public_keys]
    try:
        keys = load_trusted_keys(key_paths)
    except (OSError, ValueError) as exc:
        return Check(
            "snapshot",
            "FAIL",
            f"cannot read the snapshot public keys: {exc}",
            "enrol the node again (`ruang edge enroll --force`) to get the key",
        )
    store = SnapshotStore(settings.state_dir / "snapshot.json", keys)
    store.load()
    view = store.current
    # Which keys the node trusts: what a key rotation checks node by node (docs/operations.md).
    trusted = f"trusted keys: {', '.join(store.trusted_key_ids) or 'none'}"
    if view is None:
        detail = f"{store.last_error or 'none stored yet'}; {trusted}"
        return Check(
            "snapshot",
            "WARN",
            detail,
            "until the cloud pushes one (on connect) taps are decided in open mode",
        )
    age = now - view.body.issued_at
    detail = f"version {view.version}, issued {age / 60:.0f} min ago; {trusted}"
    if now > view.body.valid_until:
        return Check(
            "snapshot",
            "WARN",
            detail + ", expired",
            "the node has not heard from the cloud: check the broker",
        )
    return Check("snapshot", "PASS", detail)


def check_remote_config(settings: EdgeSettings) -> Check:
    store = RemoteConfigStore(settings.state_dir)
    if store.load_error:
        return Check("remote config", "WARN", store.load_error, "push the config again")
    detail = f"version {store.version}" if store.version else "none (file config only)"
    if store.refused is not None:
        return Check(
            "remote config",
            "WARN",
            f"{detail}; v{store.refused[0]} refused: {store.refused[1]}",
            "fix the config in the cloud and push a newer version",
        )
    return Check("remote config", "PASS", detail)


# --- the whole run --------------------------------------------------------------------------


async def diagnose(
    config_path: Path | None,
    *,
    cloud_url: str | None = None,
    ble_scanner_factory: ScannerFactory | None = None,
) -> list[Check]:
    """Every check, in the order a technician fixes things."""
    config, settings = check_config(config_path)
    checks = [config]
    if settings is None:
        return [*checks, await check_clock(cloud_url)]
    checks += await check_devices(settings)
    checks.append(await check_bluetooth(settings, ble_scanner_factory))
    # Each node of a broker cluster: a dead one is worth knowing before it is needed.
    for broker in parse_broker_urls(settings.mqtt_url):
        checks.append(await check_broker(settings, broker))
    checks.append(await check_clock(cloud_url))
    checks.append(check_disk(settings.state_dir))
    checks.append(check_outbox(settings))
    checks.append(check_watchdog(settings))
    checks.append(check_snapshot(settings, time.time()))
    checks.append(check_remote_config(settings))
    return checks


async def run_doctor(config_path: Path | None, *, cloud_url: str | None = None) -> int:
    checks = await diagnose(config_path, cloud_url=cloud_url)
    for check in checks:
        print(check.line())
    failed = sum(1 for c in checks if c.level == "FAIL")
    warned = sum(1 for c in checks if c.level == "WARN")
    print(f"\n{len(checks)} checks: {failed} FAIL, {warned} WARN")
    return 1 if failed else 0
