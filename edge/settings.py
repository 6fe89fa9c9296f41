"""Typed edge configuration: a YAML/JSON file, overridable by RUANG_* environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ruang.contract import ID_PATTERN
from ruang.mqtt_url import parse_broker_urls
from ruang.site_defaults import DEFAULT_TIMEZONE

from .devices.ble_config import BleConfig
from .devices.deskunit import DeskUnitConfig
from .devices.door import DoorConfig
from .devices.gps import GpsConfig
from .devices.radar import RadarConfig
from .vehicle_config import VehicleConfig


class ConfigError(ValueError):
    """The edge config file is missing, unreadable or invalid; the message says where."""


class EdgeSettings(BaseSettings):
    """Everything the agent needs; loaded once in `main` and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="RUANG_", env_nested_delimiter="__", extra="forbid"
    )

    node_id: str = Field(pattern=ID_PATTERN)
    # One broker URL, or the nodes of a broker cluster comma-separated: the uplink
    # tries them round-robin and moves on when one fails (docs/operations.md).
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    # CA that signed the broker's certificate (written by `ruang edge enroll`); used
    # for mqtts:// URLs instead of the system trust store.
    mqtt_ca_file: Path | None = None
    mqtt_keepalive_s: int = Field(default=15, ge=2, le=3600)
    state_dir: Path = Path("./var/edge")
    health_interval_s: float = Field(default=30.0, gt=0)
    # The status port (edge/status_server.py): GET /metrics for Prometheus, off when unset;
    # 0 picks a free port. Loopback unless the operator names the management interface.
    status_port: int | None = Field(default=None, ge=0, le=65535)
    status_host: str = "127.0.0.1"
    # Durable outbox (docs/edge-outbox.md): logical size bound; past it telemetry is shed
    # lowest-priority-oldest-first and events are kept with an alarm raised.
    outbox_max_mb: float = Field(default=200.0, gt=0)
    # Backlog drain rate until the cloud sends a `backlog_rate` command.
    backlog_default_rate: float = Field(default=200.0, gt=0, le=100_000)
    # QoS 1 publishes awaiting PUBACK, per stream (live, backlog); far below MQTT's 65,535
    # packet ids, and enough to keep the link busy (edge/mqtt_link.py).
    max_inflight: int = Field(default=100, ge=1, le=30_000)
    # Events stay in the outbox after the broker's PUBACK until the cloud's event_ack;
    # unacknowledged ones are resent after this long (doubling per try, up to the max).
    # 0 turns cloud acks off (for a cloud older than event_ack): delete at PUBACK.
    event_ack_timeout_s: float = Field(default=30.0, ge=0)
    event_ack_max_backoff_s: float = Field(default=3600.0, gt=0)
    # Per-subsystem watchdogs (edge/watchdog.py): how often they are checked, how long
    # each kind of subsystem may go without a heartbeat, and how long one may stay
    # stalled before systemd's watchdog is no longer fed and restarts the agent.
    watchdog_interval_s: float = Field(default=1.0, gt=0)
    watchdog_device_stale_s: float = Field(default=120.0, gt=0)
    watchdog_uplink_stale_s: float = Field(default=60.0, gt=0)
    watchdog_hard_limit_s: float = Field(default=300.0, gt=0)
    outbox_probe_interval_s: float = Field(default=10.0, gt=0)
    outbox_probe_timeout_s: float = Field(default=5.0, gt=0)
    desk_units: list[DeskUnitConfig] = Field(default_factory=list)
    # mmWave presence radars, one per desk or room (docs/devices/ld2410.md).
    radars: list[RadarConfig] = Field(default_factory=list)
    # GNSS receivers of vehicles (docs/devices/gps.md).
    gps: list[GpsConfig] = Field(default_factory=list)
    # Vehicle nodes (shuttle, pool car): the vehicle, its door readers (docs/transport.md).
    vehicle: VehicleConfig | None = None
    # OSDP door readers (docs/devices/osdp.md); their keys are sealed with the node key.
    doors: list[DoorConfig] = Field(default_factory=list)
    node_key_file: Path = Path("/etc/ruang/node.key")
    # Badge allow-list for doors until the cloud's first snapshot arrives (optional).
    allow_list_file: Path | None = None
    building_tz: str = DEFAULT_TIMEZONE
    # BLE badge scanning (docs/devices/ble.md); off unless enabled.
    ble: BleConfig = Field(default_factory=BleConfig)
    # Public key (PEM) the cloud signs desk/booking snapshots with; without it the
    # node decides taps in open mode (any badge may claim a free desk).
    snapshot_public_key: Path | None = None
    # More public keys (PEM files) the node trusts, for a key rotation: add the cloud's new
    # key here, then the cloud switches to it, then the old one is removed. Any file may
    # also hold several keys (GET /api/v1/snapshot-keys serves such a bundle).
    snapshot_public_keys: list[Path] = Field(default_factory=list)
    # Checked-in desk vacant this long -> released (a snapshot from the cloud overrides).
    away_s: float = Field(default=1800.0, ge=1)
    away_warning_s: float = Field(default=300.0, ge=0)

    @field_validator("mqtt_url")
    @classmethod
    def _valid_broker_url(cls, value: str) -> str:
        parse_broker_urls(value)
        return value

    @field_validator("desk_units")
    @classmethod
    def _unique_desks(cls, units: list[DeskUnitConfig]) -> list[DeskUnitConfig]:
        seen: set[str] = set()
        for unit in units:
            if unit.desk in seen:
                raise ValueError(f"desk {unit.desk!r} is listed twice")
            seen.add(unit.desk)
        return units

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, so a technician can change one value
        # (for example RUANG_MQTT_URL) without editing the config.
        return env_settings, init_settings


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid YAML/JSON: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def format_validation_error(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: {exc.error_count()} problem(s)"]
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  - {where}: {err['msg']}")
    return "\n".join(lines)


def load_edge_settings(path: Path | str | None = None, **overrides: Any) -> EdgeSettings:
    data = _read_file(Path(path)) if path is not None else {}
    data.update(overrides)
    try:
        return EdgeSettings(**data)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(f"edge config {path or '(environment)'}", exc)
        ) from None
