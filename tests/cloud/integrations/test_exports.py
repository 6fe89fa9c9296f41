"""Booking exports: CSV rows, and iCalendar that follows RFC 5545's framing rules."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from cloud.bookings.ics import fold
from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud

# Exports read what the booking tests already cover on both databases.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _unfold(body: bytes) -> list[str]:
    text = body.decode("utf-8")
    assert "\n" not in text.replace("\r\n", "")  # CRLF only
    raw = text.split("\r\n")
    assert raw[-1] == ""
    for line in raw:
        assert len(line.encode()) <= 75
    lines: list[str] = []
    for line in raw[:-1]:
        if line.startswith(" "):
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


@sqlite_only
async def test_ics_export_is_well_formed(cloud: RunningCloud, settings: CloudSettings) -> None:
    await seed(cloud, settings)
    when = slot()
    made = (await cloud.http.post("/api/v1/bookings", json=booking("L1-D03", "p-ayu", when))).json()
    other = (
        await cloud.http.post("/api/v1/bookings", json=booking("L1-D04", "p-budi", slot(days=2)))
    ).json()
    await cloud.http.post(f"/api/v1/bookings/{other['id']}/cancel")

    r = await cloud.http.get("/api/v1/bookings/export.ics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    lines = _unfold(r.content)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in lines and any(x.startswith("PRODID:") for x in lines)
    events: list[dict[str, str]] = []
    for line in lines:
        if line == "BEGIN:VEVENT":
            events.append({})
        elif events and ":" in line and line != "END:VEVENT":
            name, value = line.split(":", 1)
            events[-1][name] = value
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == 2
    mine = next(e for e in events if e["UID"] == f"booking-{made['id']}@ruang")
    assert mine["SUMMARY"] == "Meja L1-D03"
    start = datetime.fromisoformat(when[0]).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    assert mine["DTSTART"] == start and mine["DTEND"].endswith("Z") and "DTSTAMP" in mine
    assert "Gedung Kantor Bersama A1\\, Lantai 1" in mine["LOCATION"]
    assert {e["STATUS"] for e in events} == {"CONFIRMED", "CANCELLED"}

    r = await cloud.http.get("/api/v1/bookings/export.ics", params={"person": "p-ayu"})
    assert _unfold(r.content).count("BEGIN:VEVENT") == 1


def test_fold_counts_octets_and_keeps_characters_whole() -> None:
    line = "LOCATION:" + "Kawasan Inti Pusat Pemerintahan — " * 5
    folded = fold(line)
    pieces = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in pieces) and len(pieces) > 2
    assert "".join(p[1:] if i else p for i, p in enumerate(pieces)) == line


@sqlite_only
async def test_csv_export(cloud: RunningCloud, settings: CloudSettings) -> None:
    await seed(cloud, settings)
    made = (
        await cloud.http.post("/api/v1/bookings", json=booking("L1-D03", "p-ayu", slot()))
    ).json()
    r = await cloud.http.get("/api/v1/bookings/export.csv", params={"desk": "L1-D03"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["id"], row["desk_id"], row["status"]) for row in rows] == [
        (str(made["id"]), "L1-D03", "booked")
    ]
