"""A visitor's pass: a signed token in a QR code, a short code to type, and the ICS of the visit.

Each visit has a random 10-character pass code (base32, 50 bits), stored with it.
The QR code carries `RV1-<visit id>-<code>-<mac>`, where mac is
HMAC-SHA256(secret, "<visit id>.<code>"), base32, first 16 characters: reception's
scanner can tell a forged or mistyped pass from an unknown one without a lookup,
and the whole token stays in QR alphanumeric mode (upper case, digits, "-"), so
the code is small enough for a phone screen. The code alone is what a guest
reads out or reception types when the camera cannot scan.

The secret is `RUANG_VISITOR_PASS_SECRET` or the file `RUANG_VISITOR_PASS_SECRET_FILE`,
the same on every replica; in development only, unset means a random one kept in
`visitor-pass-secret` next to the snapshot signing key (created 0600, cloud/keys.py).

QR codes are drawn locally (segno): no external service sees a pass.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets
from datetime import UTC, datetime

import segno

from cloud.bookings.ics import escape_text, fold
from cloud.keys import VISITOR_PASS_SECRET, shared_secret
from cloud.settings import CloudSettings

CODE_LENGTH = 10
MAC_LENGTH = 16
PRODID = "-//Ruang//Visitors//ID"
_TOKEN = re.compile(r"^RV1-([0-9]{1,16})-([A-Z2-7]{10})-([A-Z2-7]{16})$")
_CODE = re.compile(r"^[A-Z2-7]{10}$")


def new_code() -> str:
    """A fresh random pass code."""
    return base64.b32encode(secrets.token_bytes(7)).decode()[:CODE_LENGTH]


def normalise_code(text: str) -> str:
    """A typed code as stored: upper case, spaces and hyphens dropped."""
    return re.sub(r"[\s-]", "", text).upper()


class PassKeys:
    """Signs and reads visitors' pass tokens."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: CloudSettings) -> PassKeys:
        # Configured (value or file); created next to the snapshot key only in development.
        return cls(shared_secret(settings, VISITOR_PASS_SECRET))

    def _mac(self, visit_id: int, code: str) -> str:
        digest = hmac.new(self._secret, f"{visit_id}.{code}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode()[:MAC_LENGTH]

    def token(self, visit_id: int, code: str) -> str:
        return f"RV1-{visit_id}-{code}-{self._mac(visit_id, code)}"

    def read(self, text: str) -> tuple[int | None, str] | None:
        """(visit id, code) of a scanned token, (None, code) of a typed code, None if neither.

        A token whose mac does not match is None: forged or damaged.
        """
        raw = text.strip().upper()
        match = _TOKEN.match(raw)
        if match is not None:
            visit_id, code, mac = int(match[1]), match[2], match[3]
            if not hmac.compare_digest(self._mac(visit_id, code).encode(), mac.encode()):
                return None
            return visit_id, code
        code = normalise_code(raw)
        return (None, code) if _CODE.match(code) else None


def qr_svg(token: str, title: str = "Ruang visitor pass") -> str:
    """The token as an SVG QR code (medium error correction: a cracked phone screen still reads)."""
    out = io.BytesIO()
    segno.make(token, error="m", micro=False).save(
        out, kind="svg", scale=8, border=4, title=title, xmldecl=False, unit="px"
    )
    return out.getvalue().decode()


def visit_ics(
    *, visit_id: int, starts_at: datetime, ends_at: datetime, place: str, summary: str,
    description: str, now: datetime, sequence: int = 0, host: str = "ruang",
    cancelled: bool = False,
) -> str:  # fmt: skip
    """One VEVENT for the guest's calendar (RFC 5545; CANCEL when the visit is cancelled).

    `sequence` must grow with every revision of the visit: mails can arrive out of
    order, and a calendar keeps the version with the highest SEQUENCE (RFC 5546 2.1.4).
    """

    def utc(ts: datetime) -> str:
        return ts.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if cancelled else 'PUBLISH'}",
        "BEGIN:VEVENT",
        f"UID:visit-{visit_id}@{host}",
        f"DTSTAMP:{utc(now)}",
        f"SEQUENCE:{sequence}",
        f"DTSTART:{utc(starts_at)}",
        f"DTEND:{utc(ends_at)}",
        f"SUMMARY:{escape_text(summary)}",
        f"LOCATION:{escape_text(place)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)
