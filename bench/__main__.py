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
        admin_badges,
        ble,
        boarding,
        bookings,
        broker_cluster,
        codec,
        dashboards,
        devices_codec,
        door_revocation,
        edge_load,
        events,
        faults,
        history,
        ingest,
        notifications,
        osdp,
        outbox,
        privacy,
        replicas,
        retention,
        roles,
        rooms,
        scim,
        seats,
        tap_latency,
        tap_offline,
        targets,
        transport,
        visitors,
    )

    suites: dict[str, Callable[[], dict[str, Any]]] = {
        "codec": codec.run,
        "devices_codec": devices_codec.run,
        "ble": ble.run,
        "tap_latency": tap_latency.run,
        "tap_offline": tap_offline.run,
        "boarding": boarding.run,
        "ingest": ingest.run,
        "events": events.run,
        "outbox": outbox.run,
        "bookings": bookings.run,
        "rooms": rooms.run,
        "osdp": osdp.run,
        "door_revocation": door_revocation.run,
        "admin_badges": admin_badges.run,
        "scim": scim.run,
        "scim_deprovision": scim.run_door,
        "edge_load": edge_load.run,
        "faults": faults.run,
        "dashboards": dashboards.run,
        "notifications": notifications.run,
        "visitors": visitors.run,
        "transport": transport.run,
        "seats": seats.run,
        "history": history.run,
        "roles": roles.run,
        "broker_cluster": broker_cluster.run,
        "privacy": privacy.run,
        "retention": retention.run,
        "replicas": replicas.run,
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
        # A figure with a target says whether it met it (bench/targets.py); a FAIL fails the run.
        failed.extend(f"{name}.{key}" for key in targets.failures(figures))
        for key, value in figures.items():
            if key.endswith(("_target", "_verdict")) and key.rsplit("_", 1)[0] in figures:
                continue  # printed on its figure's line
            shown = f"{value:,.3f}" if isinstance(value, float) else f"{value}"
            target = figures.get(f"{key}_target")
            if target is not None:
                verdict = figures.get(f"{key}_verdict", figures.get("verdict", ""))
                shown = f"{shown:<14} target {target:<12} {verdict}"
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
