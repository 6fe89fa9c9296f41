"""The running agent's status file and `ruang edge status`, which reads it.

The agent writes `state_dir/status.json` every health interval (atomically, so
a reader never sees half a file). `ruang edge status` prints it as a table and
says the agent looks stopped when the file is older than three intervals: a
running agent rewrites it every interval, so a stale file means the agent (or
its health loop, which the systemd watchdog also watches) is not running.
The file also carries the watchdog table (edge/watchdog.py): one row per
subsystem with its last heartbeat, its allowed staleness and its restarts.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruang import contract

log = logging.getLogger(__name__)

FILE_NAME = "status.json"
STALE_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What the running agent says about itself beyond its `NodeHealth` (edge/health_loop.py)."""

    node: str
    health_interval_s: float
    uplink_connected: bool
    outbox_depth: int
    outbox_awaiting_ack: int
    outbox_alarm: str | None
    watchdog: list[dict[str, Any]]
    devices: list[contract.DeviceHealth]
    snapshot_version: int | None
    config_version: int | None
    last_error: str | None


def status_of(status: NodeStatus, health: contract.NodeHealth) -> dict[str, Any]:
    return {
        "node": status.node,
        "pid": os.getpid(),
        # Wall clock on purpose: another process compares it with its own clock.
        "written_at": time.time(),
        "health_interval_s": status.health_interval_s,
        "uptime_s": round(health.uptime_s, 1),
        "uplink_connected": status.uplink_connected,
        "outbox_depth": status.outbox_depth,
        "outbox_awaiting_ack": status.outbox_awaiting_ack,
        "outbox_alarm": status.outbox_alarm,
        "watchdog": status.watchdog,
        "devices": [
            {"device": d.device, "kind": d.kind, "online": d.online, "detail": d.detail}
            for d in status.devices
        ],
        "snapshot_version": status.snapshot_version,
        "config_version": status.config_version,
        "last_error": status.last_error,
        "alarms": list(health.alarms),
    }


def write_status(state_dir: Path, status: NodeStatus, health: contract.NodeHealth) -> None:
    """Writes the status file; a failure (disk full) is logged, never raised into the agent."""
    path = state_dir / FILE_NAME
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status_of(status, health), indent=1, default=str))
        tmp.replace(path)
    except OSError as exc:
        log.warning("cannot write %s: %s", path, exc)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / FILE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def format_status(status: dict[str, Any] | None, state_dir: Path, now: float) -> tuple[str, bool]:
    """The table `ruang edge status` prints, and whether the agent looks alive."""
    if status is None:
        return (
            f"no status in {state_dir / FILE_NAME}: the agent has not run here yet, "
            "or state_dir differs from the agent's (pass the same --config)",
            False,
        )
    interval = float(status.get("health_interval_s") or 30.0)
    age = now - float(status.get("written_at") or 0.0)
    alive = age <= STALE_INTERVALS * interval
    rows = [
        ("node", str(status.get("node"))),
        ("status written", f"{age:.0f} s ago"),
        ("uptime", f"{float(status.get('uptime_s') or 0):.0f} s"),
        ("uplink connected", _yes_no(status.get("uplink_connected"))),
        ("outbox depth", str(status.get("outbox_depth"))),
        ("awaiting cloud ack", str(status.get("outbox_awaiting_ack", "-"))),
        ("outbox alarm", str(status.get("outbox_alarm") or "-")),
        ("snapshot version", str(status.get("snapshot_version") or "-")),
        ("config version", str(status.get("config_version") or "- (file config only)")),
        ("last uplink error", str(status.get("last_error") or "-")),
    ]
    alarms = status.get("alarms") or []
    rows += [("alarm", str(a)) for a in alarms]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    devices = status.get("devices") or []
    if devices:
        online = sum(1 for d in devices if d.get("online"))
        lines += ["", f"devices: {online} of {len(devices)} online"]
        table = [("DEVICE", "KIND", "ONLINE", "DETAIL")] + [
            (str(d.get("device")), str(d.get("kind")), _yes_no(d.get("online")),
             str(d.get("detail") or "-"))
            for d in devices
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                  for r in table]  # fmt: skip
    watchdog = status.get("watchdog") or []
    if watchdog:
        stalled = sum(1 for w in watchdog if w.get("state") != "ok")
        lines += ["", f"watchdog: {len(watchdog) - stalled} of {len(watchdog)} subsystems ok"]
        wtable = [("SUBSYSTEM", "STATE", "LAST BEAT", "STALE AFTER", "RESTARTS", "DETAIL")] + [
            (str(w.get("subsystem")), str(w.get("state")), f"{w.get('last_beat_s')} s",
             f"{w.get('stale_after_s')} s", str(w.get("restarts")), str(w.get("detail") or "-"))
            for w in watchdog
        ]  # fmt: skip
        wwidths = [max(len(r[i]) for r in wtable) for i in range(6)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, wwidths, strict=True)).rstrip()
                  for r in wtable]  # fmt: skip
    if not alive:
        lines.insert(
            0,
            f"AGENT LOOKS STOPPED: status is {age:.0f} s old (more than {STALE_INTERVALS} health "
            f"intervals of {interval:g} s). Check `systemctl status ruang-edge` and the journal.",
        )
    return "\n".join(lines), alive


def show_status(config_path: Path | None) -> int:
    """`ruang edge status`: 0 when the agent looks alive, 1 when stopped, 2 on a bad config."""
    from .settings import ConfigError, load_edge_settings

    try:
        settings = load_edge_settings(config_path)
    except ConfigError as exc:
        print(f"ruang edge status: {exc}")
        return 2
    text, alive = format_status(read_status(settings.state_dir), settings.state_dir, time.time())
    print(text)
    return 0 if alive else 1
