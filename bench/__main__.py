"""`make bench`: runs every benchmark and prints its figures (see BENCHMARKS.md).

Each benchmark starts its own servers on loopback and stops them; all request
loops are bounded in count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("only", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()

    from bench import (
        ble,
        bookings,
        codec,
        dashboards,
        devices_codec,
        edge_load,
        events,
        faults,
        ingest,
        notifications,
        osdp,
        outbox,
        rooms,
        tap_latency,
        tap_offline,
    )

    suites: dict[str, Callable[[], dict[str, Any]]] = {
        "codec": codec.run,
        "devices_codec": devices_codec.run,
        "ble": ble.run,
        "tap_latency": tap_latency.run,
        "tap_offline": tap_offline.run,
        "ingest": ingest.run,
        "events": events.run,
        "outbox": outbox.run,
        "bookings": bookings.run,
        "rooms": rooms.run,
        "osdp": osdp.run,
        "edge_load": edge_load.run,
        "faults": faults.run,
        "dashboards": dashboards.run,
        "notifications": notifications.run,
    }
    chosen = args.only or list(suites)
    print(f"machine: {_machine()}")
    results: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for name in chosen:
        started = time.monotonic()
        print(f"\n== {name}", flush=True)
        figures = suites[name]()
        results[name] = figures
        # A suite with a target says whether it met it; a FAIL fails the run.
        if figures.get("verdict") == "FAIL":
            failed.append(name)
        for key, value in figures.items():
            shown = f"{value:,.3f}" if isinstance(value, float) else f"{value}"
            print(f"  {key:<40} {shown}")
        print(f"  ({time.monotonic() - started:.1f} s)", flush=True)
    if args.json:
        print(json.dumps(results))
    if failed:
        print(f"\nFAIL: {', '.join(failed)} below target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
