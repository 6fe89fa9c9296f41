"""The edge<->cloud MQTT contract: topic tree and versioned payload schemas.

Both the edge agent and the cloud import this module and nothing else to know
what goes over MQTT; `docs/mqtt-contract.md` documents the same thing for
people. Everything here works over MQTT 3.1.1: the payload carries its own
schema version and message id instead of relying on MQTT 5 user properties.

Topic tree (``{node}`` is the edge node id, ``{kind}`` the message kind)::

    ruang/v1/nodes/{node}/state               retained, QoS 1: birth and last-will
    ruang/v1/nodes/{node}/events/{kind}       QoS 1: things that happened once (check-in...)
    ruang/v1/nodes/{node}/telemetry/{kind}    QoS 0: samples (presence, heartbeat, node health)
    ruang/v1/nodes/{node}/backlog/{kind}      QoS 1: outbox data drained after an outage
    ruang/v1/nodes/{node}/commands/{kind}     QoS 1, cloud -> edge: commands (LED...)
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
TOPIC_ROOT = "ruang/v1"
EVENT_QOS = 1
TELEMETRY_QOS = 0
STATE_QOS = 1
COMMAND_QOS = 1
# event_ack goes at QoS 0: a lost one only costs a resend the cloud drops by id, and
# QoS 1 would queue it behind the cloud's PUBACK window while a backlog is delivered.
EVENT_ACK_QOS = 0
BACKLOG_QOS = 1

# Node and desk ids appear in topics and as time-series tags: keep them to a
# safe alphabet so they can never inject MQTT wildcards or line-protocol syntax.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)

NodeId = Annotated[str, Field(pattern=ID_PATTERN)]
DeskId = Annotated[str, Field(pattern=ID_PATTERN)]
MessageId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
# Card UIDs are 4, 7 or 10 bytes (ISO/IEC 14443-3); carried as upper-case hex.
BadgeUid = Annotated[str, Field(pattern=r"^(?:[0-9A-F]{2}){4,10}$")]
# A badge as the edge identified it: an NFC card UID, or `ble:<id>` for a BLE badge
# whose (possibly rotating) identifier the edge resolved to its enrolled id.
BadgeRef = Annotated[str, Field(pattern=r"^(?:(?:[0-9A-F]{2}){4,10}|ble:[A-Za-z0-9_.-]{1,60})$")]
DeviceId = Annotated[str, Field(pattern=ID_PATTERN)]

# --- bounds: every field fits what the cloud's SQL columns and Python's datetime hold --------
# A value that validates must never fail downstream (docs/mqtt-contract.md, "Bounds").
# Unix seconds up to 2100-01-01T00:00:00Z: far inside datetime (year 9999) and SQL
# timestamps; the cloud further refuses a `ts` outside a window around its own clock.
MAX_TIMESTAMP = 4_102_444_800.0
INT32_MAX = 2**31 - 1  # SQL INTEGER columns (config versions, outbox depth)
INT64_MAX = 2**63 - 1  # SQL BIGINT columns and counters
Timestamp = Annotated[float, Field(ge=0, le=MAX_TIMESTAMP, description="Unix time (s)")]
Int32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
Version = Annotated[int, Field(ge=1, le=INT32_MAX)]
# Free text: length-bounded, and no NUL, which PostgreSQL text columns cannot store.
_TEXT_PATTERN = r"^[^\x00]*$"


def _text(max_length: int) -> Any:
    return Field(max_length=max_length, pattern=_TEXT_PATTERN)


Text32 = Annotated[str, _text(32)]
Text64 = Annotated[str, _text(64)]
Text128 = Annotated[str, _text(128)]
Text512 = Annotated[str, _text(512)]
# Collections carried in one message (a node's desks, its alarms...).
MAX_DESKS_PER_NODE = 1024
MAX_ALARMS = 32
MAX_CONFIG_KEYS = 64
# Every model: floats must be finite (JSON `NaN`/`Infinity` tokens and 1e400 refused).
_MODEL_CONFIG = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class ContractError(ValueError):
    """A topic or payload that does not follow the contract; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Channel(StrEnum):
    STATE = "state"
    EVENTS = "events"
    TELEMETRY = "telemetry"
    COMMANDS = "commands"
    # Historical data drained from a node's outbox after an outage, on its own
    # channel so live data is never queued behind it and the cloud can tell them apart.
    BACKLOG = "backlog"


def new_message_id() -> str:
    """A unique id for one message; the cloud de-duplicates on it."""
    return uuid.uuid4().hex


def now() -> float:
    return time.time()


class _Payload(BaseModel):
    """Fields every payload carries."""

    # extra="ignore": a newer edge may add fields an older cloud does not know yet.
    model_config = _MODEL_CONFIG

    v: Literal[1] = 1  # == SCHEMA_VERSION
    id: MessageId = Field(default_factory=new_message_id)
    node: NodeId
    ts: float = Field(
        default_factory=now, ge=0, le=MAX_TIMESTAMP, description="Unix time (s) at the edge"
    )


# --- node state (birth / last-will) ---------------------------------------------------------


class DeskInfo(BaseModel):
    model_config = _MODEL_CONFIG

    desk: DeskId
    unit: Text64 | None = Field(default=None, description="desk unit serial")


class NodeState(_Payload):
    """Retained on `nodes/{node}/state`: birth when online, last-will when offline.

    `bdseq` grows by one on every (re)connect; a death whose bdseq is older than
    the last birth is stale and must not mark the node offline.
    """

    online: bool
    bdseq: Count
    sw_version: Text64 | None = None
    desks: tuple[DeskInfo, ...] = Field(default=(), max_length=MAX_DESKS_PER_NODE)
    outbox_depth: Int32 | None = Field(default=None, description="messages awaiting upload")
    # Additive: the remote config version the node runs (None: only its file config).
    config_version: Version | None = None


# --- events (QoS 1) -------------------------------------------------------------------------


class CheckIn(_Payload):
    desk: DeskId
    badge: BadgeRef
    # The booking the tap checked into, when the edge's snapshot had one; None for
    # a walk-up claim of a free desk (or a node running without a snapshot).
    booking: Text64 | None = None
    person: Text64 | None = None


class CheckOut(_Payload):
    desk: DeskId
    badge: BadgeRef | None = None
    reason: Literal["tap", "left", "released", "command"] = "tap"


class TapRefused(_Payload):
    desk: DeskId
    badge: BadgeRef
    reason: Text128


class ButtonPressed(_Payload):
    desk: DeskId
    button: int = Field(ge=0, le=255)
    long_press: bool = False


class AccessDecision(_Payload):
    """A card read at a door and what the edge decided, with its place in the audit chain."""

    door: DeviceId
    badge: BadgeRef | None = None
    granted: bool
    reason: Text128
    audit_seq: Count
    audit_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 chain hash, hex")


class Boarding(_Payload):
    """A badge tapped at a shuttle's door reader and what the vehicle's node decided, offline.

    `trip`/`service_date` are the trip the node believed it was running (from its
    snapshot and clock); `stop` is the stop inferred from the last GNSS fix, None
    when the vehicle was not at a stop. Ridership counts allowed boardings only,
    once per message id.
    """

    vehicle: DeviceId
    reader: DeviceId
    badge: BadgeRef
    allowed: bool
    reason: Literal["reserved", "walk_on", "full", "unknown_badge", "no_trip", "not_allowed"]
    trip: Text64 | None = None
    service_date: Text32 | None = Field(default=None, pattern=r"^\d{8}$", description="YYYYMMDD")
    stop: Text64 | None = None
    reservation: Text64 | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class PoolCarUse(_Payload):
    """A badge tapped at a pool car's reader: pick-up, return, or a refusal, decided offline."""

    vehicle: DeviceId
    reader: DeviceId
    badge: BadgeRef
    action: Literal["pickup", "return", "refused"]
    reason: Text128
    booking: Text64 | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class ConfigStatus(_Payload):
    """The node's answer to a `config` push: applied or refused (with why), and what it runs."""

    version: Version = Field(description="the pushed version this answers")
    applied: bool
    error: Text512 | None = None
    active_version: Version | None = Field(default=None, description="None: file config only")


class DoorStatus(_Payload):
    """A door reader's condition changed (online/offline, tamper, power)."""

    door: DeviceId
    condition: Literal[
        "online", "offline", "tamper", "tamper_cleared", "power_fail", "power_restored"
    ]
    detail: Text128 | None = None


class UnitStatus(_Payload):
    """A desk unit said hello (online) or stopped answering (offline)."""

    desk: DeskId
    online: bool
    unit: Text64 | None = None
    firmware: Text32 | None = None


# --- telemetry (QoS 0) ----------------------------------------------------------------------


class Presence(_Payload):
    desk: DeskId
    present: bool
    source: Literal["deskunit", "radar", "ble"] = "deskunit"


class RoomPresence(_Payload):
    """A room sensor (e.g. a radar over a meeting room) saw the room become occupied or free."""

    room: DeviceId
    present: bool
    sensor: DeviceId | None = None


class BadgePresence(_Payload):
    """A BLE badge became present in / left a zone (or the area of a desk)."""

    badge: BadgeRef
    zone: DeviceId
    desk: DeskId | None = None
    present: bool
    confidence: float = Field(ge=0, le=1)
    rssi: float | None = Field(default=None, ge=-127, le=20)


class Position(_Payload):
    """A vehicle's GNSS fix (office shuttles, pool cars)."""

    vehicle: DeviceId
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    speed_kmh: float = Field(ge=0, le=400)
    heading_deg: float | None = Field(default=None, ge=0, lt=360)
    fix_quality: int = Field(ge=0, le=8, description="NMEA GGA fix quality; 0 = no fix")
    satellites: int | None = Field(default=None, ge=0, le=99)
    hdop: float | None = Field(default=None, ge=0, le=99.99)


class DeviceHealth(_Payload):
    """Health of one attached device, for technicians (rejected frames, last reading, battery)."""

    device: DeviceId
    kind: Literal["deskunit", "radar", "ble_scanner", "ble_badge", "door", "gps"]
    online: bool
    rejected_frames: Count = 0
    last_reading_ts: Timestamp | None = None
    battery_pct: int | None = Field(default=None, ge=0, le=100)
    detail: Text128 | None = None


class Heartbeat(_Payload):
    desk: DeskId
    uptime_s: Count


class NodeHealth(_Payload):
    """Periodic node health; optional fields are absent where the node cannot read them."""

    uptime_s: float = Field(ge=0, le=INT64_MAX)
    rss_bytes: Count
    rejected_frames: Count
    mqtt_reconnects: Count
    units_online: Count
    cpu_pct: float | None = Field(
        default=None, ge=0, le=100_000, description="agent CPU, % of one core"
    )
    mem_available_bytes: Count | None = None
    disk_free_bytes: Count | None = None
    temperature_c: float | None = Field(default=None, ge=-60, le=150)
    outbox_depth: Int32 | None = None
    dropped_telemetry: Count | None = None
    alarms: tuple[Text128, ...] = Field(default=(), max_length=MAX_ALARMS)
    config_version: Version | None = Field(default=None, description="remote config applied")


# --- commands (cloud -> edge, QoS 1) --------------------------------------------------------

LedPatternName = Literal["off", "solid", "blink", "pulse"]


class LedCommand(_Payload):
    desk: DeskId
    r: int = Field(ge=0, le=255)
    g: int = Field(ge=0, le=255)
    b: int = Field(ge=0, le=255)
    pattern: LedPatternName = "solid"
    duration_s: int = Field(default=0, ge=0, le=65535, description="0 = until changed")


EVENT_KINDS: dict[str, type[_Payload]] = {
    "checkin": CheckIn,
    "checkout": CheckOut,
    "tap_refused": TapRefused,
    "button": ButtonPressed,
    "unit_status": UnitStatus,
    "access": AccessDecision,
    "door_status": DoorStatus,
    "config_status": ConfigStatus,
    "boarding": Boarding,
    "poolcar": PoolCarUse,
}
TELEMETRY_KINDS: dict[str, type[_Payload]] = {
    "presence": Presence,
    "room_presence": RoomPresence,
    "heartbeat": Heartbeat,
    "health": NodeHealth,
    "badge_presence": BadgePresence,
    "position": Position,
    "device_health": DeviceHealth,
}


class SnapshotDesk(BaseModel):
    model_config = _MODEL_CONFIG

    desk: DeskId
    mode: Literal["reservable", "drop_in", "assigned", "unavailable"] = "reservable"
    assigned_person: Text64 | None = None


class SnapshotBooking(BaseModel):
    model_config = _MODEL_CONFIG

    id: Text64
    desk: DeskId
    person: Text64
    start: Timestamp
    end: Timestamp
    status: Literal["booked", "checked_in"] = "booked"


# Door rights in a snapshot (docs/access-control.md): per badge and door, the windows it opens in.
MAX_DOOR_RIGHTS_PER_BADGE = 256
MAX_WINDOWS_PER_DOOR = 64
MAX_DOORS_PER_NODE = 256
# One window: [start, end) in Unix seconds, already resolved by the cloud from weekly
# schedules, the site's time zone and its holidays, so the node needs no calendar.
DoorWindow = tuple[Timestamp, Timestamp]


class SnapshotDoorRight(BaseModel):
    """A badge may open `door` at any instant inside one of `windows` ([start, end), Unix s)."""

    model_config = _MODEL_CONFIG

    door: DeviceId
    windows: tuple[DoorWindow, ...] = Field(default=(), max_length=MAX_WINDOWS_PER_DOOR)


class SnapshotDoor(BaseModel):
    """A door of the node whose rights the cloud manages (the badges' `doors` decide it).

    Anti-passback (optional): a granted badge at this door moves from `zone_from`
    into `zone_to`; with `anti_passback` the node refuses a badge it last saw
    enter a zone other than `zone_from` (it is already inside) until
    `anti_passback_reset_s` have passed since then.
    """

    model_config = _MODEL_CONFIG

    door: DeviceId
    zone_from: DeviceId | None = None
    zone_to: DeviceId | None = None
    anti_passback: bool = False
    anti_passback_reset_s: Int32 = 12 * 3600


class SnapshotBadge(BaseModel):
    model_config = _MODEL_CONFIG

    badge: BadgeRef
    person: Text64
    valid_until: Timestamp | None = None
    # Additive (door rights): not usable before this instant (a guest's visit window).
    valid_from: Timestamp | None = None
    # The doors (of `SnapshotBody.doors`) this badge opens and when; empty: none of them.
    doors: tuple[SnapshotDoorRight, ...] = Field(default=(), max_length=MAX_DOOR_RIGHTS_PER_BADGE)


class SnapshotVehicle(BaseModel):
    """The vehicle a node rides in (vehicle nodes only)."""

    model_config = _MODEL_CONFIG

    vehicle: DeviceId
    kind: Literal["shuttle", "poolcar"]
    capacity: int = Field(ge=0, le=1000, description="seated + standing riders (shuttle) or seats")


class SnapshotStop(BaseModel):
    """A stop of a trip, where the vehicle's node infers the boarding stop from its fix."""

    model_config = _MODEL_CONFIG

    stop: Text64
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class SnapshotTrip(BaseModel):
    """One trip the vehicle is scheduled or assigned to run, with its seat count."""

    model_config = _MODEL_CONFIG

    trip: Text64
    service_date: Text32 = Field(pattern=r"^\d{8}$", description="YYYYMMDD")
    start: Timestamp = Field(description="first departure (scheduled)")
    end: Timestamp = Field(description="last arrival (scheduled)")
    capacity: int = Field(ge=0, le=1000)
    reserved: int = Field(ge=0, le=1000, description="confirmed reservations at issue time")
    # The trip's stops in order (docs/transport.md): a boarding's stop is the one
    # within a short radius of the vehicle's last fix. Empty: the stop stays unknown.
    stops: tuple[SnapshotStop, ...] = Field(default=(), max_length=200)


class SnapshotSeat(BaseModel):
    """A confirmed seat reservation on one of the vehicle's trips."""

    model_config = _MODEL_CONFIG

    id: Text64
    person: Text64
    trip: Text64
    service_date: Text32 = Field(pattern=r"^\d{8}$")
    from_stop: Text64


class SnapshotCarBooking(BaseModel):
    """An approved pool-car booking of this vehicle: who may pick it up, and when."""

    model_config = _MODEL_CONFIG

    id: Text64
    person: Text64
    start: Timestamp
    end: Timestamp


class SnapshotBody(BaseModel):
    """What a node needs to decide taps alone: its desks, today's bookings, the badge allow-list."""

    model_config = _MODEL_CONFIG

    # Milliseconds since the epoch (cloud.fleet.snapshots.next_version): a 64-bit value.
    version: int = Field(ge=1, le=INT64_MAX)
    issued_at: Timestamp
    valid_until: Timestamp = Field(description="after this the node treats the snapshot as stale")
    grace_s: Int32 = Field(default=900, description="no check-in within this -> released")
    away_s: int = Field(
        default=1800, ge=1, le=INT32_MAX, description="vacant this long -> released"
    )
    away_warning_s: Int32 = Field(default=300, description="warning LED before release")
    desks: tuple[SnapshotDesk, ...] = Field(default=(), max_length=MAX_DESKS_PER_NODE)
    bookings: tuple[SnapshotBooking, ...] = Field(default=(), max_length=50_000)
    badges: tuple[SnapshotBadge, ...] = Field(default=(), max_length=200_000)
    # Vehicle nodes only (docs/transport.md): the vehicle, its trips, seats and car bookings.
    vehicle: SnapshotVehicle | None = None
    trips: tuple[SnapshotTrip, ...] = Field(default=(), max_length=2_000)
    seats: tuple[SnapshotSeat, ...] = Field(default=(), max_length=100_000)
    car_bookings: tuple[SnapshotCarBooking, ...] = Field(default=(), max_length=2_000)
    # Door nodes (docs/access-control.md): the node's doors whose rights the cloud manages.
    # A door listed here opens only for a badge with a window for it in `badges[].doors`;
    # a door not listed keeps the node's local allow-list and schedule (older clouds).
    doors: tuple[SnapshotDoor, ...] = Field(default=(), max_length=MAX_DOORS_PER_NODE)


class Snapshot(_Payload):
    """Retained on the node's `commands/snapshot`: a signed, versioned SnapshotBody.

    `signature` is ECDSA P-256 / SHA-256 (base64url, DER) by the cloud's snapshot
    key over `canonical_json(body)`; the node verifies it with the public key it
    got at enrolment and ignores a version not newer than the one it holds.
    """

    key_id: Text64
    body: SnapshotBody
    signature: str = Field(max_length=256, pattern=r"^[A-Za-z0-9_=-]*$")


def canonical_json(body: SnapshotBody) -> bytes:
    """The exact bytes a snapshot signature covers."""
    import json

    data = body.model_dump(mode="json")
    # The door-rights fields are left out at their defaults, so the bytes of a body
    # without door rights are those an older cloud signed and an older node checks:
    # snapshots keep verifying across the upgrade in both directions.
    if not data["doors"]:
        del data["doors"]
    for badge in data["badges"]:
        if badge["valid_from"] is None:
            del badge["valid_from"]
        if not badge["doors"]:
            del badge["doors"]
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class BacklogRate(_Payload):
    """How fast the node may drain its outbox backlog, so a building-wide outage
    does not hammer the cloud when it ends."""

    max_msgs_per_s: float = Field(gt=0, le=100_000)


class AuditAck(_Payload):
    """The cloud has committed these access decisions; the node may prune its audit log."""

    seqs: tuple[Count, ...] = Field(min_length=1, max_length=5000)


class EventAck(_Payload):
    """The cloud has committed these events (by message id); the node may forget them.

    Sent per node after each database commit that held events, in chunks of at most
    MAX_EVENT_ACK_IDS ids. Until it arrives the node keeps each event in its outbox
    and resends it now and then: a broker killed outright can lose messages it had
    already acknowledged to the node.
    """

    ids: tuple[MessageId, ...] = Field(min_length=1, max_length=1000)


MAX_EVENT_ACK_IDS = 1000


# Edge settings the cloud may push (ConfigPush.config keys); identity, broker and
# file paths stay with the node's own config file.
REMOTE_CONFIG_KEYS = frozenset({
    "desk_units", "radars", "gps", "ble", "doors",
    "health_interval_s", "away_s", "away_warning_s", "building_tz", "vehicle",
})  # fmt: skip


class ConfigPush(_Payload):
    """Retained on the node's `commands/config`: its desired settings (a subset of EdgeSettings).

    `config` holds device and timing settings only (desk_units, radars, gps, ble,
    doors, health_interval_s, away_s...); the node refuses identity and broker
    settings (node_id, credentials) and ignores a version not newer than its own.
    """

    version: Version
    config: dict[Text64, Any] = Field(default_factory=dict, max_length=MAX_CONFIG_KEYS)


COMMAND_KINDS: dict[str, type[_Payload]] = {
    "led": LedCommand,
    "audit_ack": AuditAck,
    "event_ack": EventAck,
    "backlog_rate": BacklogRate,
    "snapshot": Snapshot,
    "config": ConfigPush,
}
_KIND_BY_MODEL: dict[type[_Payload], str] = {
    model: kind
    for table in (EVENT_KINDS, TELEMETRY_KINDS, COMMAND_KINDS)
    for kind, model in table.items()
}


# --- topics ---------------------------------------------------------------------------------


def _check_id(value: str, what: str) -> str:
    if not _ID_RE.match(value):
        raise ContractError(f"invalid {what} {value!r}")
    return value


def state_topic(node: str) -> str:
    return f"{TOPIC_ROOT}/nodes/{_check_id(node, 'node id')}/state"


def event_topic(node: str, kind: str) -> str:
    return f"{TOPIC_ROOT}/nodes/{_check_id(node, 'node id')}/events/{kind}"


def telemetry_topic(node: str, kind: str) -> str:
    return f"{TOPIC_ROOT}/nodes/{_check_id(node, 'node id')}/telemetry/{kind}"


def backlog_topic(node: str, kind: str) -> str:
    if kind not in EVENT_KINDS and kind not in TELEMETRY_KINDS:
        raise ContractError(f"no backlog for kind {kind!r}")
    return f"{TOPIC_ROOT}/nodes/{_check_id(node, 'node id')}/backlog/{kind}"


def command_topic(node: str, kind: str) -> str:
    return f"{TOPIC_ROOT}/nodes/{_check_id(node, 'node id')}/commands/{kind}"


# What the cloud subscribes to; what an edge node subscribes to (its own commands).
CLOUD_SUBSCRIPTIONS: tuple[tuple[str, int], ...] = (
    (f"{TOPIC_ROOT}/nodes/+/state", STATE_QOS),
    (f"{TOPIC_ROOT}/nodes/+/events/+", EVENT_QOS),
    (f"{TOPIC_ROOT}/nodes/+/telemetry/+", TELEMETRY_QOS),
    (f"{TOPIC_ROOT}/nodes/+/backlog/+", BACKLOG_QOS),
)


def node_command_subscription(node: str) -> str:
    return f"{TOPIC_ROOT}/nodes/{_check_id(node, 'node id')}/commands/+"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    node: str
    channel: Channel
    kind: str  # "" for the state channel


_TOPIC_RE = re.compile(
    r"^ruang/v1/nodes/([^/]+)/(state|events|telemetry|commands|backlog)(?:/([^/]+))?$"
)


def parse_topic(topic: str) -> ParsedTopic:
    m = _TOPIC_RE.match(topic)
    if m is None:
        raise ContractError(f"topic outside the contract: {topic[:120]!r}")
    node, channel, kind = m.group(1), Channel(m.group(2)), m.group(3) or ""
    _check_id(node, "node id")
    if (channel is Channel.STATE) != (kind == ""):
        raise ContractError(f"malformed {channel} topic: {topic[:120]!r}")
    return ParsedTopic(node=node, channel=channel, kind=kind)


# --- encode / decode ------------------------------------------------------------------------

Message = _Payload


def encode(message: _Payload) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def topic_for(message: _Payload) -> str:
    """The topic a message is published on (derived from its type and node)."""
    if isinstance(message, NodeState):
        return state_topic(message.node)
    kind = _KIND_BY_MODEL[type(message)]
    if kind in EVENT_KINDS:
        return event_topic(message.node, kind)
    if kind in TELEMETRY_KINDS:
        return telemetry_topic(message.node, kind)
    return command_topic(message.node, kind)


def kind_of(message: _Payload) -> str:
    """The message's kind ("checkin", "presence", ...; "state" for a NodeState)."""
    if isinstance(message, NodeState):
        return "state"
    return _KIND_BY_MODEL[type(message)]


def is_event(message: _Payload) -> bool:
    return kind_of(message) in EVENT_KINDS


def qos_for(message: _Payload) -> int:
    if isinstance(message, NodeState):
        return STATE_QOS
    if isinstance(message, EventAck):
        return EVENT_ACK_QOS
    kind = _KIND_BY_MODEL[type(message)]
    if kind in TELEMETRY_KINDS:
        return TELEMETRY_QOS
    return EVENT_QOS


def model_for(parsed: ParsedTopic) -> type[_Payload]:
    if parsed.channel is Channel.STATE:
        return NodeState
    if parsed.channel is Channel.BACKLOG:
        model = EVENT_KINDS.get(parsed.kind) or TELEMETRY_KINDS.get(parsed.kind)
        if model is None:
            raise ContractError(f"unknown backlog kind {parsed.kind!r}")
        return model
    table = {
        Channel.EVENTS: EVENT_KINDS,
        Channel.TELEMETRY: TELEMETRY_KINDS,
        Channel.COMMANDS: COMMAND_KINDS,
    }[parsed.channel]
    model = table.get(parsed.kind)
    if model is None:
        raise ContractError(f"unknown {parsed.channel} kind {parsed.kind!r}")
    return model


def decode(topic: str, payload: bytes | bytearray | str) -> tuple[ParsedTopic, _Payload]:
    """Validates one MQTT message against the contract.

    Raises ContractError with a one-line reason for anything that does not
    belong: unknown topic or kind, bad JSON, wrong schema version, a field out
    of range, or a payload whose `node` differs from the node in the topic.
    """
    parsed = parse_topic(topic)
    model = model_for(parsed)
    try:
        message = model.model_validate_json(payload)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
        raise ContractError(
            f"{parsed.channel}/{parsed.kind or 'state'}: {where}: {err['msg']}"
        ) from None
    if message.node != parsed.node:
        raise ContractError(
            f"payload node {message.node!r} does not match topic node {parsed.node!r}"
        )
    return parsed, message


def describe() -> dict[str, Any]:
    """JSON schemas of every payload, for docs and for integrators."""
    out: dict[str, Any] = {"state": NodeState.model_json_schema()}
    for name, table in (
        ("events", EVENT_KINDS),
        ("telemetry", TELEMETRY_KINDS),
        ("commands", COMMAND_KINDS),
    ):
        out[name] = {kind: model.model_json_schema() for kind, model in table.items()}
    return out
