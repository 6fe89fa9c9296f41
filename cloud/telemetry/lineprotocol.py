"""InfluxDB line-protocol formatting of contract telemetry (pre-formatted strings).

Strings are far cheaper to build than influxdb-client `Point` objects, which
matters at tens of thousands of messages per second. Node and desk ids are
already restricted by the contract to a safe alphabet, but tags are escaped
anyway so this module stays correct on its own.

Badge ids never reach a line in clear: the callers pass the pseudonym function
(`cloud/privacy/pseudonyms.py`) and the badge fields and BLE badge device tags
carry its result.
"""

from __future__ import annotations

from collections.abc import Callable

from ruang import contract

# Badge id -> what the time series may hold instead (a keyed pseudonym).
Pseudonym = Callable[[str], str]

_TAG_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n"})
# Ids repeat constantly (a few thousand desks): escape each once.
_escaped: dict[str, str] = {}
_ESCAPE_CACHE_MAX = 100_000


def escape_tag(value: str) -> str:
    """Escapes a tag key or value (commas, equals signs, spaces, backslashes)."""
    hit = _escaped.get(value)
    if hit is None:
        hit = value.translate(_TAG_ESCAPES)
        if len(_escaped) >= _ESCAPE_CACHE_MAX:
            _escaped.clear()
        _escaped[value] = hit
    return hit


def ts_ns(ts: float) -> int:
    # Microsecond rounding: a float of unix seconds does not hold nanoseconds anyway.
    return round(ts * 1_000_000) * 1000


def presence(message: contract.Presence) -> str:
    return (
        f"presence,node={escape_tag(message.node)},desk={escape_tag(message.desk)},"
        f"source={message.source} present={1 if message.present else 0}i {ts_ns(message.ts)}"
    )


def room_presence(message: contract.RoomPresence) -> str:
    tags = f"room_presence,node={escape_tag(message.node)},room={escape_tag(message.room)}"
    if message.sensor is not None:
        tags += f",sensor={escape_tag(message.sensor)}"
    return f"{tags} present={1 if message.present else 0}i {ts_ns(message.ts)}"


def heartbeat(message: contract.Heartbeat) -> str:
    return (
        f"heartbeat,node={escape_tag(message.node)},desk={escape_tag(message.desk)} "
        f"uptime_s={message.uptime_s}i {ts_ns(message.ts)}"
    )


def node_health(message: contract.NodeHealth) -> str:
    return (
        f"node_health,node={escape_tag(message.node)} "
        f"uptime_s={float(message.uptime_s)!r},rss_bytes={message.rss_bytes}i,"
        f"rejected_frames={message.rejected_frames}i,mqtt_reconnects={message.mqtt_reconnects}i,"
        f"units_online={message.units_online}i {ts_ns(message.ts)}"
    )


def position(message: contract.Position) -> str:
    fields = (
        f"lat={message.lat!r},lon={message.lon!r},speed_kmh={message.speed_kmh!r},"
        f"fix_quality={message.fix_quality}i"
    )
    if message.heading_deg is not None:
        fields += f",heading_deg={message.heading_deg!r}"
    if message.satellites is not None:
        fields += f",satellites={message.satellites}i"
    if message.hdop is not None:
        fields += f",hdop={message.hdop!r}"
    return (
        f"position,node={escape_tag(message.node)},vehicle={escape_tag(message.vehicle)} "
        f"{fields} {ts_ns(message.ts)}"
    )


def device_health(message: contract.DeviceHealth, pseudonym: Pseudonym) -> str:
    # A BLE badge reports its battery under its own id (without the `ble:` of its badge
    # ref): hashed as the ref, so its battery and its presence share one pseudonym.
    device = message.device
    if message.kind == "ble_badge":
        device = pseudonym(f"ble:{device}")
    fields = f"online={1 if message.online else 0}i,rejected_frames={message.rejected_frames}i"
    if message.battery_pct is not None:
        fields += f",battery_pct={message.battery_pct}i"
    return (
        f"device_health,node={escape_tag(message.node)},device={escape_tag(device)},"
        f"kind={message.kind} {fields} {ts_ns(message.ts)}"
    )


def badge_presence(message: contract.BadgePresence, pseudonym: Pseudonym) -> str:
    tags = f"badge_presence,node={escape_tag(message.node)},zone={escape_tag(message.zone)}"
    if message.desk is not None:
        tags += f",desk={escape_tag(message.desk)}"
    # The badge is a field, not a tag: one series per badge would explode cardinality.
    badge = pseudonym(message.badge).replace("\\", "\\\\").replace('"', '\\"')
    fields = (
        f'badge="{badge}",present={1 if message.present else 0}i,confidence={message.confidence!r}'
    )
    return f"{tags} {fields} {ts_ns(message.ts)}"


def node_state(node: str, online: bool, ts: float, bdseq: int | None = None) -> str:
    fields = f"online={1 if online else 0}i"
    if bdseq is not None:
        fields += f",bdseq={bdseq}i"
    return f"node_state,node={escape_tag(node)} {fields} {ts_ns(ts)}"


def for_telemetry(message: contract.Message, pseudonym: Pseudonym) -> str | None:
    """The line for one telemetry message, or None for a type without a series."""
    if isinstance(message, contract.Presence):
        return presence(message)
    if isinstance(message, contract.RoomPresence):
        return room_presence(message)
    if isinstance(message, contract.Heartbeat):
        return heartbeat(message)
    if isinstance(message, contract.NodeHealth):
        return node_health(message)
    if isinstance(message, contract.Position):
        return position(message)
    if isinstance(message, contract.DeviceHealth):
        return device_health(message, pseudonym)
    if isinstance(message, contract.BadgePresence):
        return badge_presence(message, pseudonym)
    return None
