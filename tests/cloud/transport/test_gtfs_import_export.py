"""GTFS zip import (every error with file, line, field; all or nothing) and export (validated
by gtfs-kit, an independent validator from PyPI)."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import gtfs_kit
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.tables import TRANSPORT_STOP_TIMES, TRANSPORT_TRIPS
from cloud.errors import Invalid, TooLarge
from cloud.transport import gtfs_import, schedule
from cloud.transport.gtfs_export import export_gtfs, sample_zip
from cloud.transport.gtfs_import import import_gtfs, parse_feed

from .gtfs_helpers import edited, line_of, make_zip, sample_files

MONDAY = date(2026, 12, 7)
WITA = schedule.ZoneInfo("Asia/Makassar")


def validator_errors(data: bytes, tmp_path: Path) -> list[Any]:
    path = tmp_path / "feed.zip"
    path.write_bytes(data)
    report = gtfs_kit.read_feed(path, dist_units="m").validate()
    return [tuple(row) for row in report.itertuples(index=False) if row.type == "error"]


def refusal(data: bytes) -> list[dict[str, Any]]:
    with pytest.raises(Invalid) as caught:
        parse_feed(data)
    assert caught.value.title == "GTFS import refused"
    errors: list[dict[str, Any]] = caught.value.extensions["errors"]
    assert errors
    return errors


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        trips = (await conn.execute(select(func.count()).select_from(TRANSPORT_TRIPS))).scalar()
        times = (
            await conn.execute(select(func.count()).select_from(TRANSPORT_STOP_TIMES))
        ).scalar()
    return int(trips or 0), int(times or 0)


async def test_the_export_passes_the_independent_validator_and_reimports_identically(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await import_gtfs(engine, sample_zip())
    async with engine.connect() as conn:
        exported = await export_gtfs(conn)
        before = await schedule.plans_for_day(conn, MONDAY)
    assert validator_errors(exported, tmp_path) == []
    names = set(zipfile.ZipFile(io.BytesIO(exported)).namelist())
    assert {"agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt"} <= names
    assert {"calendar.txt", "calendar_dates.txt", "shapes.txt", "feed_info.txt"} <= names
    await import_gtfs(engine, exported)
    async with engine.connect() as conn:
        assert await schedule.plans_for_day(conn, MONDAY) == before
        assert await export_gtfs(conn) == exported


def test_the_validator_does_find_errors(tmp_path: Path) -> None:
    # Guards the test above: a feed with a broken reference must fail gtfs-kit too.
    files = sample_files()
    broken = files["stop_times.txt"].replace(",HA-BLOK-D,", ",NOWHERE,", 1)
    assert validator_errors(edited(stop_times_txt=broken), tmp_path)


async def test_a_bad_feed_changes_nothing_and_names_file_line_field(engine: AsyncEngine) -> None:
    await import_gtfs(engine, sample_zip())
    before = await counts(engine)
    files = sample_files()
    text = files["stop_times.txt"]
    bad = text.replace("K1-0-0600,06:04:00,", "K1-0-0600,06:4:00,", 1)
    with pytest.raises(Invalid) as caught:
        await import_gtfs(engine, edited(stop_times_txt=bad, trips_txt=files["trips.txt"][:-1]))
    assert caught.value.extensions["errors"] == [
        {
            "file": "stop_times.txt",
            "line": line_of(text, "K1-0-0600,06:04:00,"),
            "field": "arrival_time",
            "message": "'06:4:00' is not a time as HH:MM:SS (hours may pass 24 for trips "
            "after midnight)",
        }
    ]
    assert await counts(engine) == before


def test_a_missing_required_file_is_named() -> None:
    errors = refusal(edited(stop_times_txt=None))
    assert {
        "file": "stop_times.txt",
        "line": 0,
        "field": "",
        "message": "required file missing",
    } in errors
    errors = refusal(edited(calendar_txt=None, calendar_dates_txt=None))
    assert [e["file"] for e in errors] == ["calendar.txt"]


def test_a_missing_required_column_is_named() -> None:
    stops = sample_files()["stops.txt"].replace("stop_lat,", "latitude,", 1)
    assert refusal(edited(stops_txt=stops)) == [
        {"file": "stops.txt", "line": 1, "field": "stop_lat", "message": "required column missing"}
    ]


def test_an_unknown_stop_reference_is_named_with_its_line() -> None:
    text = sample_files()["stop_times.txt"]
    line = line_of(text, "K2-1-1230,")
    lines = text.splitlines()
    lines[line - 1] = lines[line - 1].replace(",KIPP-TERM,", ",KIPP-NOWHERE,")
    errors = refusal(edited(stop_times_txt="\n".join(lines) + "\n"))
    assert errors == [
        {
            "file": "stop_times.txt",
            "line": line,
            "field": "stop_id",
            "message": "unknown stop 'KIPP-NOWHERE'",
        }
    ]


def test_duplicate_ids_are_refused_with_both_lines() -> None:
    text = sample_files()["stops.txt"]
    first = text.splitlines()[1]
    errors = refusal(edited(stops_txt=text + first + "\n"))
    assert errors == [
        {
            "file": "stops.txt",
            "line": len(text.splitlines()) + 1,
            "field": "stop_id",
            "message": "duplicate stop_id 'KIPP-TERM' (first on line 2)",
        }
    ]


def test_non_utf8_text_is_refused_at_its_line() -> None:
    text = sample_files()["stops.txt"].replace("Kemensetneg", "Kemensetneg Ñ")
    body = text.encode("latin-1")
    errors = refusal(edited(stops_txt=body))
    assert errors == [
        {
            "file": "stops.txt",
            "line": line_of(text, "Kemensetneg"),
            "field": "",
            "message": "not UTF-8 text (byte 0xD1)",
        }
    ]


def test_many_field_errors_are_all_listed() -> None:
    files = sample_files()
    stops = files["stops.txt"].replace("-0.96950,116.70200", "-95.0,116.70200")
    routes = files["routes.txt"].replace("1B6AC9", "blue")
    calendar = files["calendar.txt"].replace("20271231", "20251231")
    errors = refusal(edited(stops_txt=stops, routes_txt=routes, calendar_txt=calendar))
    found = {(e["file"], e["line"], e["field"]) for e in errors}
    assert found == {
        ("stops.txt", 2, "stop_lat"),
        ("routes.txt", 2, "route_color"),
        # Reference checks run only once every field is valid.
    }
    errors = refusal(edited(calendar_txt=calendar))
    assert errors == [
        {"file": "calendar.txt", "line": 2, "field": "end_date", "message": "before start_date"}
    ]


def test_times_out_of_order_and_a_trip_without_stops_are_refused() -> None:
    files = sample_files()
    text = files["stop_times.txt"]
    late = text.replace("K1-0-0600,06:04:00,06:04:30", "K1-0-0600,06:15:00,06:15:30", 1)
    trips = files["trips.txt"] + "K1,WEEKDAY,K1-EMPTY,KIPP,0,K1-0,1\n"
    errors = refusal(edited(stop_times_txt=late, trips_txt=trips))
    assert {(e["file"], e["field"], e["message"]) for e in errors} == {
        ("stop_times.txt", "arrival_time", "earlier than the stop before it"),
        ("trips.txt", "trip_id", "a trip needs two stop times"),
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 this is no zip", "not a zip file"),
        (b"", "not a zip file"),
        (make_zip({"gtfs/agency.txt": "x"}), "GTFS files must be at the root of the zip"),
    ],
)
def test_what_is_not_a_gtfs_zip_is_refused(data: bytes, message: str) -> None:
    errors = refusal(data)
    assert len(errors) == 1 and errors[0]["message"].startswith(message)


def test_a_zip_bomb_is_refused_before_it_is_unpacked(monkeypatch: pytest.MonkeyPatch) -> None:
    # 150 MB of one byte compresses to ~150 kB: over the 100 MB a member may unpack to.
    bomb = make_zip({**sample_files(), "shapes.txt": b"0" * 150_000_000})
    assert len(bomb) < 1_000_000
    with pytest.raises(TooLarge):
        parse_feed(bomb)


def test_a_member_whose_header_lies_about_its_size_is_cut_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gtfs_import, "MAX_FILE_BYTES", 1000)
    data = edited()
    # Patch the stop_times entry's declared size down to 10 bytes in the central directory.
    archive = zipfile.ZipFile(io.BytesIO(data))
    info = archive.getinfo("stop_times.txt")
    assert info.file_size > 1000
    raw = bytearray(data)
    central = raw.rfind(b"PK\x01\x02", 0, len(raw))
    while central >= 0:
        name_len = int.from_bytes(raw[central + 28 : central + 30], "little")
        if raw[central + 46 : central + 46 + name_len] == b"stop_times.txt":
            raw[central + 24 : central + 28] = (10).to_bytes(4, "little")
            break
        central = raw.rfind(b"PK\x01\x02", 0, central)
    with pytest.raises((TooLarge, Invalid)):
        parse_feed(bytes(raw))


def test_an_upload_over_the_limit_is_refused_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gtfs_import, "MAX_ZIP_BYTES", 1000)
    with pytest.raises(TooLarge):
        parse_feed(sample_zip())


async def test_times_past_midnight_belong_to_the_service_day_before(
    engine: AsyncEngine,
) -> None:
    files = sample_files()
    trips = files["trips.txt"] + "K1,WEEKDAY,K1-0-LATE,KIPP,0,K1-0,1\n"
    times = files["stop_times.txt"] + (
        "K1-0-LATE,23:50:00,23:50:00,HA-BLOK-A,1,0.0,1\n"
        "K1-0-LATE,,,HA-BLOK-D,2,506.9,0\n"
        "K1-0-LATE,24:02:00,24:02:00,SIMPANG-SKS,3,1256.7,1\n"
        "K1-0-LATE,24:10:00,24:10:00,KIPP-TERM,4,3159.3,1\n"
    )
    await import_gtfs(engine, edited(trips_txt=trips, stop_times_txt=times))
    async with engine.connect() as conn:
        plan = await schedule.trip_plan(conn, "K1-0-LATE", "20261211")  # a Friday
        after = datetime(2026, 12, 12, 0, 0, tzinfo=WITA).timestamp()  # Saturday 00:00
        deps = await schedule.departures_from(conn, "SIMPANG-SKS", after, limit=1)
    assert plan is not None
    end = datetime.fromtimestamp(plan.end, WITA)
    assert end.isoformat() == "2026-12-12T00:10:00+08:00"
    # The untimed stop is interpolated by distance between its neighbours.
    middle = plan.stops[1]
    share = middle.dist_m / plan.stops[2].dist_m
    assert middle.arrival == pytest.approx(plan.stops[0].departure + share * 720, abs=1)
    assert [(d.trip_id, d.service_date) for d in deps] == [("K1-0-LATE", "20261211")]


async def test_stops_without_shape_distances_are_projected_onto_the_shape(
    engine: AsyncEngine,
) -> None:
    files = sample_files()

    # Drop every shape_dist_traveled: stops must then be placed by projection.
    def strip_last(text: str) -> str:
        return "\n".join(",".join(line.split(",")[:-1]) for line in text.splitlines()) + "\n"

    shapes = strip_last(files["shapes.txt"])
    times = (
        "\n".join(
            ",".join(line.split(",")[:5] + line.split(",")[6:])
            for line in files["stop_times.txt"].splitlines()
        )
        + "\n"
    )
    await import_gtfs(engine, sample_zip())
    async with engine.connect() as conn:
        with_dist = await schedule.trip_plan(conn, "K2-1-0630", MONDAY)
    await import_gtfs(engine, edited(shapes_txt=shapes, stop_times_txt=times))
    async with engine.connect() as conn:
        projected = await schedule.trip_plan(conn, "K2-1-0630", MONDAY)
    assert with_dist is not None and projected is not None
    assert [s.dist_m for s in projected.stops] == pytest.approx(
        [s.dist_m for s in with_dist.stops], abs=1.0
    )
