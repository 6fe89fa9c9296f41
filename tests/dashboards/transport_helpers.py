"""Shared set-up of the transport browser tests: the sample IKN schedule, vehicles, and rows
written straight into the cloud's database for history (as the desk analytics tests do)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import create_async_engine

from cloud.db.models import Base
from cloud.transport.gtfs_export import SAMPLE_GTFS, sample_zip
from tests.dashboards.conftest import Ruang

SHUTTLES = (("shuttle-01", 24), ("shuttle-02", 24), ("shuttle-03", 30))
POOL_CARS = (("car-01", "KT 1001 IK"), ("car-02", "KT 1002 IK"))


async def load_sample_transport(
    ruang: Ruang, *, site: str = "ikn-kipp", feed: bytes | None = None
) -> None:
    """A GTFS schedule (the sample's by default), three shuttles and two pool cars (each on
    its own node), through the API as an administrator would: the live service and the
    ingest bindings learn them at once."""
    r = await ruang.admin.post(
        "/api/v1/transport/gtfs",
        content=feed or sample_zip(),
        headers={"content-type": "application/zip"},
    )
    assert r.status_code == 200, r.text
    vehicles: list[dict[str, Any]] = [
        {
            "id": vid,
            "kind": "shuttle",
            "label": vid.replace("-", " ").title(),
            "capacity": capacity,
            "seats": capacity - 6,
            "wheelchair_accessible": True,
            "node_id": vid,
            "state": "in_service",
        }
        for vid, capacity in SHUTTLES
    ]
    vehicles += [
        {
            "id": vid,
            "kind": "poolcar",
            "label": f"Mobil dinas {plate}",
            "seats": 5,
            "plate": plate,
            "site_id": site,
            "node_id": vid,
            "state": "at_depot",
        }
        for vid, plate in POOL_CARS
    ]
    for vehicle in vehicles:
        r = await ruang.admin.post("/api/v1/transport/vehicles", json=vehicle)
        assert r.status_code == 201, r.text


async def insert_rows(
    ruang: Ruang, table: str, rows: Sequence[dict[str, Any]], *, engine: Any = None
) -> None:
    """Rows into one of the cloud's tables, in one transaction."""
    own = engine is None
    engine = engine or create_async_engine(ruang.settings.database_url)
    try:
        target: Table = Base.metadata.tables[table]
        async with engine.begin() as conn:
            await conn.execute(insert(target), list(rows))
    finally:
        if own:
            await engine.dispose()


def _gtfs_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def rolling_feed(now: datetime, starts_min: Sequence[int] = (-20, -8, 5, 15, 30, 45, 60)) -> bytes:
    """The sample network with K1 and K2 trips leaving their first stop `starts_min` minutes
    from `now`, running every day: tests see departures whatever the time of day.

    The service day is the WITA date three hours before `now`, so a trip just after
    midnight is written as 24:xx of the day before (as GTFS allows) and every time is
    positive.
    """
    wita = ZoneInfo("Asia/Makassar")
    local = now.astimezone(wita)
    day = (local - timedelta(hours=3)).date()
    midnight = datetime.combine(day, time(0), wita)
    base = int((local.replace(second=0, microsecond=0) - midnight).total_seconds())
    files = {p.name: p.read_text(encoding="utf-8") for p in SAMPLE_GTFS.glob("*.txt")}
    pattern: dict[str, list[list[str]]] = {}
    for line in files["stop_times.txt"].splitlines()[1:]:
        cells = line.split(",")
        if cells[0] in ("K1-0-0700", "K2-0-0700"):
            pattern.setdefault(cells[0][:2], []).append(cells)
    trips = [
        "route_id,service_id,trip_id,trip_headsign,direction_id,shape_id,wheelchair_accessible"
    ]
    times = [files["stop_times.txt"].splitlines()[0]]
    for route, rows in sorted(pattern.items()):
        for start in starts_min:
            trip = f"{route}-R{start:+d}"
            trips.append(f"{route},DAILY,{trip},KIPP,0,{route}-0,1")
            for cells in rows:

                def shifted(hms: str, start: int = start) -> str:
                    h, m, s = (int(x) for x in hms.split(":"))
                    return _gtfs_time(base + start * 60 + (h * 3600 + m * 60 + s) - 7 * 3600)

                times.append(",".join([trip, shifted(cells[1]), shifted(cells[2]), *cells[3:]]))
    files["trips.txt"] = "\n".join(trips) + "\n"
    files["stop_times.txt"] = "\n".join(times) + "\n"
    span = (
        (day - timedelta(days=1)).strftime("%Y%m%d"),
        (day + timedelta(days=2)).strftime("%Y%m%d"),
    )
    files["calendar.txt"] = (
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
        f"DAILY,1,1,1,1,1,1,1,{span[0]},{span[1]}\n"
    )
    files.pop("calendar_dates.txt", None)
    files.pop("feed_info.txt", None)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in sorted(files.items()):
            archive.writestr(name, body)
    return buffer.getvalue()


async def load_rolling_transport(
    ruang: Ruang, now: datetime, *, site: str = "ikn-kipp", site_stops: Sequence[str] = ()
) -> None:
    """`load_sample_transport` with the rolling timetable, and the stops near `site`."""
    await load_sample_transport(ruang, site=site, feed=rolling_feed(now))
    if site_stops:
        r = await ruang.admin.put(
            f"/api/v1/transport/sites/{site}/stops",
            json=[{"stop_id": s, "walk_m": 150} for s in site_stops],
        )
        assert r.status_code == 200, r.text
