"""GTFS zip export of the current schedule, and the sample IKN schedule as a zip.

The export writes the columns of cloud/transport/gtfs_files.py for every stored
row, in a stable order (same schedule, same bytes apart from the zip's times),
plus a feed_info.txt saying which software wrote it. Empty optional files are
left out; an empty schedule still yields the required files with their headers.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.transport import gtfs_files as spec
from cloud.transport.gtfs_import import SCHEDULE_TABLES

SAMPLE_GTFS = Path(__file__).resolve().parent / "sample_gtfs"
# The zip entries' timestamp: fixed, so two exports of one schedule are identical.
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _add(archive: zipfile.ZipFile, name: str, body: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, body)


async def export_gtfs(conn: AsyncConnection) -> bytes:
    """The stored schedule as a GTFS zip."""
    buffer = io.BytesIO()
    dates: list[date] = []
    publisher_url = "https://www.ikn.go.id/"
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in spec.FILES:
            table = SCHEDULE_TABLES[file.table]
            order = [table.c[file_key] for file_key in _order_columns(file)]
            rows = list(await conn.execute(select(table).order_by(*order)))
            if not rows and not file.required:
                continue
            header = [c.gtfs for c in file.columns]
            lines = [[c.write(getattr(row, c.db)) for c in file.columns] for row in rows]
            # Optional columns nobody filled in are left out, as a hand-made feed would.
            keep = [
                i
                for i, c in enumerate(file.columns)
                if c.required or c.gtfs in file.key or any(line[i] for line in lines)
            ]
            _add(
                archive,
                file.name,
                _csv([header[i] for i in keep], [[line[i] for i in keep] for line in lines]),
            )
            if file.name == "calendar.txt":
                dates += [d for row in rows for d in (row.start_date, row.end_date)]
            if file.name == "agency.txt" and rows:
                publisher_url = rows[0].url
            if file.name == "calendar_dates.txt":
                dates += [row.date for row in rows]
        info = ["Ruang", publisher_url, "id"]
        header = ["feed_publisher_name", "feed_publisher_url", "feed_lang"]
        if dates:
            header += ["feed_start_date", "feed_end_date"]
            info += [spec.write_date(min(dates)), spec.write_date(max(dates))]
        _add(archive, "feed_info.txt", _csv(header, [info]))
    return buffer.getvalue()


def _order_columns(file: spec.FileSpec) -> list[str]:
    by_gtfs = {c.gtfs: c.db for c in file.columns}
    return [by_gtfs[k] for k in file.key]


def zip_directory(folder: Path) -> bytes:
    """The .txt files of `folder` as a GTFS zip (the sample schedule ships as files)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.glob("*.txt")):
            _add(archive, path.name, path.read_bytes())
    return buffer.getvalue()


def sample_zip() -> bytes:
    """The sample IKN schedule (cloud/transport/sample_gtfs/) as a GTFS zip."""
    return zip_directory(SAMPLE_GTFS)
