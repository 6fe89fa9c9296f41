"""HTTP API schemas of edge nodes and their health, for technicians."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from cloud.api_types import SQL_INT_MAX
from ruang.contract import ID_PATTERN


class NodeBase(BaseModel):
    online: bool
    bdseq: int | None = None
    sw_version: str | None = None
    last_seen: datetime | None = None
    last_birth_at: datetime | None = None
    last_death_at: datetime | None = None


class NodePublic(NodeBase):
    id: str
    desks: int = Field(description="number of desks served by the node")


FleetState = Literal["ok", "warning", "alarm", "offline"]


class FleetReason(BaseModel):
    code: str = Field(
        description="offline, alarm, clock_offset, outbox_depth, devices_offline, "
        "desk_units_offline, disk_free, config_pending, poolcar_overdue, poolcar_unreturned, "
        "clock_skew, dead_letters, access_chain_broken, access_chain_gap"
    )
    level: Literal["warning", "alarm", "offline"]
    detail: str


class FleetCounts(BaseModel):
    total: int
    online: int
    offline: int = Field(description="reported offline; total - online - offline are unknown")


class FleetNodeBase(BaseModel):
    online: bool
    last_seen: datetime | None = None
    sw_version: str | None = None
    config_version: int | None = Field(default=None, description="remote config the node runs")
    desired_config_version: int | None = Field(
        default=None, description="remote config the cloud wants it to run"
    )
    outbox_depth: int | None = Field(default=None, description="messages awaiting upload")
    clock_offset_s: float | None = Field(
        default=None,
        description="edge clock minus cloud receive time of the latest health message "
        "(positive = edge ahead); includes transit latency, so an upper bound",
    )
    last_health_at: datetime | None = None
    alarms: list[str] = Field(default_factory=list)
    device_counts: FleetCounts = Field(description="devices reporting device_health")
    desk_unit_counts: FleetCounts = Field(description="desk units (unit_status events)")
    site: str | None = Field(default=None, description="site of the floors it serves")
    floors: list[str] = Field(default_factory=list)
    state: FleetState = Field(description="the worst of the reasons; ok when there are none")
    reasons: list[FleetReason] = Field(default_factory=list)


class FleetNodePublic(FleetNodeBase):
    id: str


class NodeHealthPublic(BaseModel):
    """The latest NodeHealth of a node; null fields were not reported."""

    received_at: datetime
    cpu_pct: float | None = None
    rss_bytes: int | None = None
    mem_available_bytes: int | None = None
    disk_free_bytes: int | None = None
    temperature_c: float | None = None
    dropped_telemetry: int | None = None
    rejected_frames: int | None = None
    mqtt_reconnects: int | None = None
    units_online: int | None = None
    uptime_s: float | None = None


class DeviceStatusPublic(BaseModel):
    device: str
    kind: str
    online: bool
    rejected_frames: int
    last_reading_at: datetime | None = None
    battery_pct: int | None = None
    detail: str | None = None
    updated_at: datetime = Field(description="when the cloud received this report")


class DeskUnitStatusPublic(BaseModel):
    desk: str
    unit: str | None = Field(default=None, description="unit serial from its hello")
    online: bool | None = Field(default=None, description="None: never reported")
    firmware: str | None = None
    last_change_at: datetime | None = None


class FleetNodeDetailPublic(FleetNodePublic):
    health: NodeHealthPublic | None = None
    desk_units: list[DeskUnitStatusPublic] = Field(
        default_factory=list, description="desk units of the node's desks, by desk id"
    )
    devices: list[DeviceStatusPublic] = Field(
        default_factory=list, description="attached devices (device_health), by id"
    )
    devices_declared: list[dict[str, str | None]] = Field(
        default_factory=list, description="what the latest birth declared (desk units)"
    )


class HealthSamplePublic(BaseModel):
    ts: datetime = Field(description="cloud receive time")
    cpu_pct: float | None = None
    rss_bytes: int | None = None
    mem_available_bytes: int | None = None
    disk_free_bytes: int | None = None
    temperature_c: float | None = None
    outbox_depth: int | None = None
    clock_offset_s: float | None = None


class HealthHistoryPublic(BaseModel):
    node: str
    hours: float
    samples: list[HealthSamplePublic]


# --- Remote node config (cloud/api/node_config.py) ---


class NodeConfigPut(BaseModel):
    config: dict[str, Any] = Field(
        description="edge settings to push: desk_units, radars, gps, ble, doors, "
        "health_interval_s, away_s, away_warning_s, building_tz"
    )
    version: int | None = Field(
        default=None, ge=1, le=SQL_INT_MAX, description="default: stored version + 1"
    )


class DesiredConfig(BaseModel):
    version: int
    config: dict[str, Any]
    updated_at: datetime


class ReportedConfig(BaseModel):
    version: int
    applied: bool
    error: str | None = None
    active_version: int | None = None
    received_at: datetime


class NodeConfigView(BaseModel):
    node: str
    desired: DesiredConfig | None
    reported: ReportedConfig | None
    in_sync: bool = Field(description="the node runs the desired version")


# --- Enrolment (cloud/api/enrolment.py) ---

DEFAULT_TOKEN_TTL_S = 24 * 3600


class TokenCreate(BaseModel):
    node_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="generated when omitted"
    )
    ttl_s: float = Field(default=DEFAULT_TOKEN_TTL_S, gt=0, le=30 * 24 * 3600)
    config: dict[str, Any] = Field(
        default_factory=dict, description="edge settings handed to the node (desk_units...)"
    )


class TokenIssued(BaseModel):
    token: str = Field(description="shown once; the cloud keeps only its hash")
    node_id: str
    expires_at: datetime


class EnrolRequest(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    hardware_id: str | None = Field(
        default=None, max_length=128, description="e.g. the Raspberry Pi serial number"
    )


class EnrolResponse(BaseModel):
    node_id: str
    mqtt_url: str
    mqtt_username: str
    mqtt_password: str = Field(description="shown once; the cloud keeps only its hash")
    ca_cert_pem: str | None
    config: dict[str, Any]
