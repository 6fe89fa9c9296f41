"""A GTFS static zip of simulated trips (TripPlans): what the cloud imports to run the
shuttle simulator's trips as its schedule, and what GTFS-RT validators check feeds against.

Times are GTFS local times (WITA) from the service day's noon minus 12 h; shapes carry
their distances in metres, stop_times the stops' distances along them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

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
    with path.open("wb") as f:
        _write(plans, f)
    return path


def _write(plans: Sequence[TripPlan], out: io.BytesIO | io.BufferedWriter) -> None:
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
    files: dict[str, list[list[object]]] = {
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
    with zipfile.ZipFile(out, "w") as z:
        for name, rows in files.items():
            z.writestr(name, _csv(rows))


def gtfs_zip_bytes(plans: Sequence[TripPlan]) -> bytes:
    buffer = io.BytesIO()
    _write(plans, buffer)
    return buffer.getvalue()
