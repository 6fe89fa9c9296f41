"""The GTFS-Realtime feeds under test checked by an independent validator.

`gtfs-rt-validator` (PyPI) re-implements MobilityData's GTFS-Realtime validator rules
plus the current spec and best practices; it judges a realtime message against the
static GTFS it refers to: `write_gtfs_zip` (simulators/shuttle_gtfs.py) writes that
static feed from the same TripPlans, or the cloud exports its own schedule.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gtfs_rt_validator.api import Mode, Request, resolve_roles, validate

from simulators.shuttle_gtfs import write_gtfs_zip

__all__ = ["validate_feeds", "write_gtfs_zip"]


def validate_feeds(
    gtfs_zip: Path, feeds: Mapping[str, bytes], tmp: Path, at: float
) -> dict[str, Any]:
    """Run the validator over feeds by role ("tu", "vp", "sa"); returns its report with
    the notices split by severity and the system errors (unreadable input)."""
    targets = {}
    for role, data in feeds.items():
        f = tmp / f"{role}.pb"
        f.write_bytes(data)
        targets[role] = str(f)
    result = validate(
        Request(
            mode=Mode.MODERN,
            gtfs=gtfs_zip,
            inputs=resolve_roles(targets),
            at=dt.datetime.fromtimestamp(at, dt.UTC),
        )
    )
    written = result.write(tmp / "report")
    report = json.loads(written.report.read_text())
    notices = report.get("notices", [])
    return {
        "errors": [n for n in notices if n["severity"] == "ERROR"],
        "warnings": [n for n in notices if n["severity"] == "WARNING"],
        "system_errors": json.loads(written.system_errors.read_text()),
        "rules_run": report["summary"]["rulesRun"],
        "messages": report["summary"]["messagesValidated"],
    }
