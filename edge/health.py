"""Readings of the node itself for health reports: CPU, memory, disk, temperature.

Each reader returns None where the platform does not offer the value (a Pi has
/sys/class/thermal; a container may not), so health never fails for lack of one.
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from pathlib import Path

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def mem_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def disk_free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def temperature_c(zone: Path = THERMAL_ZONE) -> float | None:
    try:
        return int(zone.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


class CpuMeter:
    """CPU used by this process since the previous reading, as % of one core."""

    def __init__(self) -> None:
        self._last_cpu = time.process_time()
        self._last_wall = time.monotonic()

    def read(self) -> float:
        cpu, wall = time.process_time(), time.monotonic()
        used, elapsed = cpu - self._last_cpu, wall - self._last_wall
        self._last_cpu, self._last_wall = cpu, wall
        return round(100.0 * used / elapsed, 2) if elapsed > 0 else 0.0


def sd_notify(state: str) -> bool:
    """Tells systemd our state (READY=1, WATCHDOG=1, STATUS=...) when run as a notify unit.

    Speaks the tiny datagram protocol itself instead of adding a dependency: one
    message to the socket named in NOTIFY_SOCKET ('@' means the abstract namespace).
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    import socket

    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            # Never block the agent's event loop on a reader that does not read: a
            # full socket only loses this one notification.
            sock.setblocking(False)
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True
