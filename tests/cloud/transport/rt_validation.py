"""The GTFS-Realtime feeds under test checked by an independent validator.

`gtfs-rt-validator` (PyPI) re-implements MobilityData's GTFS-Realtime validator rules
plus the current spec and best practices; it judges a realtime message against the
static GTFS it refers to, so `write_gtfs_zip` writes that static feed from the same
TripPlans (WITA local times, shapes with distances).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gtfs_rt_validator.api import Mode, Request, resolve_roles, validate

from cloud.transport.plan import TripPlan

TZ = "Asia/Makassar"


def _gtfs_time(plan: TripPlan, ts: float) -> str:
    day = dt.datetime.strptime(plan.service_date, "%Y%m%d").date()
    base = dt.datetime.combine(day, dt.time(12), ZoneInfo(TZ)) - dt.timedelta(hours=12)
    secs = round(ts - base.timestamp())
    return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def _csv(rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def write_gtfs_zip(plans: Sequence[TripPlan], path: Path) -> Path:
    stops: dict[str, list[object]] = {}
    routes: dict[str, list[object]] = {}
    shapes: dict[str, TripPlan] = {}
    trips, stop_times = [], []
    dates = sorted({p.service_date for p in plans})
    for p in plans:
        routes[p.route_id] = [p.route_id, "ruang", p.route_id, f"Shuttle {p.route_id}", 3]
        shape_id = f"shp-{p.route_id}-{p.direction_id}"
        shapes[shape_id] = p
        trips.append([p.route_id, "WK", p.trip_id, shape_id, p.direction_id])
        for s in p.stops:
            stops[s.stop_id] = [s.stop_id, s.name, f"{s.lat:.6f}", f"{s.lon:.6f}"]
            stop_times.append(
                [
                    p.trip_id,
                    _gtfs_time(p, s.arrival),
                    _gtfs_time(p, s.departure),
                    s.stop_id,
                    s.stop_sequence,
                    f"{s.dist_m:.1f}",
                ]
            )
    shape_rows: list[list[object]] = []
    for sid, p in shapes.items():
        for i, pt in enumerate(p.shape):
            shape_rows.append([sid, f"{pt.lat:.6f}", f"{pt.lon:.6f}", i + 1, f"{pt.dist_m:.1f}"])
    files = {
        "agency.txt": [
            ["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"],
            ["ruang", "Shuttle IKN", "https://ruang.example.id", TZ, "id"],
        ],
        "stops.txt": [["stop_id", "stop_name", "stop_lat", "stop_lon"], *stops.values()],
        "routes.txt": [
            ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type"],
            *routes.values(),
        ],
        "trips.txt": [["route_id", "service_id", "trip_id", "shape_id", "direction_id"], *trips],
        "stop_times.txt": [
            [
                "trip_id",
                "arrival_time",
                "departure_time",
                "stop_id",
                "stop_sequence",
                "shape_dist_traveled",
            ],
            *stop_times,
        ],
        "calendar.txt": [
            [
                "service_id",
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
                "start_date",
                "end_date",
            ],
            ["WK", 1, 1, 1, 1, 1, 1, 1, dates[0], dates[-1]],
        ],
        "shapes.txt": [
            [
                "shape_id",
                "shape_pt_lat",
                "shape_pt_lon",
                "shape_pt_sequence",
                "shape_dist_traveled",
            ],
            *shape_rows,
        ],
    }
    with zipfile.ZipFile(path, "w") as z:
        for name, rows in files.items():
            z.writestr(name, _csv(rows))
    return path


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
