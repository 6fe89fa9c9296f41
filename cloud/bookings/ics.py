"""iCalendar (RFC 5545) and CSV renderings of bookings.

RFC 5545 wants CRLF line ends, lines folded at 75 octets (not characters: a
multi-byte UTF-8 character is never split) and TEXT values escaped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from cloud.bookings.schemas import BookingPublic

PRODID = "-//Ruang//Shared desks//ID"
_STATUS = {"booked": "CONFIRMED", "checked_in": "CONFIRMED", "completed": "CONFIRMED"}
CSV_FIELDS = (
    "id",
    "desk_id",
    "person_id",
    "starts_at",
    "ends_at",
    "status",
    "created_at",
    "cancelled_at",
    "released_at",
    "release_reason",
    "series_id",
)


def escape_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Splits a content line into CRLF-joined pieces of at most 75 octets."""
    out: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            out.append(current)
            # Continuation lines start with one space, which counts toward 75.
            current, size, limit = " ", 1, 75
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def _utc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def bookings_ics(
    bookings: Iterable[BookingPublic], places: Mapping[str, str], now: datetime, host: str = "ruang"
) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    for b in bookings:
        lines += [
            "BEGIN:VEVENT",
            f"UID:booking-{b.id}@{host}",
            f"DTSTAMP:{_utc(now)}",
            f"DTSTART:{_utc(b.starts_at)}",
            f"DTEND:{_utc(b.ends_at)}",
            f"SUMMARY:{escape_text(f'Meja {b.desk_id}')}",
            f"LOCATION:{escape_text(places.get(b.desk_id, b.desk_id))}",
            f"STATUS:{_STATUS.get(b.status, 'CANCELLED')}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def bookings_csv(bookings: Iterable[BookingPublic]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for b in bookings:
        writer.writerow(b.model_dump(mode="json", include=set(CSV_FIELDS)))
    return out.getvalue()
