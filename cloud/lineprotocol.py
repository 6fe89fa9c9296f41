"""InfluxDB line-protocol formatting of contract telemetry (pre-formatted strings).

Strings are far cheaper to build than influxdb-client `Point` objects, which
matters at tens of thousands of messages per second. Node and desk ids are
already restricted by the contract to a safe alphabet, but tags are escaped
anyway so this module stays correct on its own.
"""

from __future__ import annotations

from ruang import contract

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
        f"presence,node={escape_tag(message.node)},desk={escape_tag(message.desk)} "
        f"present={1 if message.present else 0}i {ts_ns(message.ts)}"
    )


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


def node_state(node: str, online: bool, ts: float, bdseq: int | None = None) -> str:
    fields = f"online={1 if online else 0}i"
    if bdseq is not None:
        fields += f",bdseq={bdseq}i"
    return f"node_state,node={escape_tag(node)} {fields} {ts_ns(ts)}"


def for_telemetry(message: contract.Message) -> str | None:
    """The line for one telemetry message, or None for a type without a series."""
    if isinstance(message, contract.Presence):
        return presence(message)
    if isinstance(message, contract.Heartbeat):
        return heartbeat(message)
    if isinstance(message, contract.NodeHealth):
        return node_health(message)
    return None
