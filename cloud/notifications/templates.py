"""The notification kinds and their Bahasa Indonesia and English texts.

Every kind names the data fields its texts use; `notify` refuses an unknown kind
or missing fields at write time, so a message cannot fail to render later. A
field ending in `_at` is an ISO timestamp shown in the site's time zone (the
`timezone` field, WITA by default); `reason` is a code shown in words.

Email bodies are plain text plus a simple HTML rendering of the same text: no
images, fonts, scripts or links to other servers.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruang.site_defaults import DEFAULT_TIMEZONE

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"


@dataclass(frozen=True)
class Template:
    fields: tuple[str, ...]
    subject: dict[str, str]
    body: dict[str, str]


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


# Why a booking was released, in words (codes from cloud/bookings).
REASONS: dict[str, dict[str, str]] = {
    "no_show": {
        "id": "tidak ada check-in sampai batas waktu",
        "en": "nobody checked in before the deadline",
    },
    "away": {
        "id": "meja ditinggalkan terlalu lama",
        "en": "the desk was left empty for too long",
    },
    "released_at_desk": {
        "id": "dilepas di meja",
        "en": "released at the desk",
    },
    "displaced_by_offline_checkin": {
        "id": "meja sudah ditempati orang lain yang check-in saat jaringan putus",
        "en": "someone checked in at the desk while it was offline",
    },
}

KINDS: dict[str, Template] = {
    "booking_confirmed": Template(
        fields=("desk_id", "starts_at", "ends_at"),
        subject={"id": "Pemesanan meja {desk_id} dikonfirmasi", "en": "Desk {desk_id} booked"},
        body={
            "id": "Meja {desk_id} sudah dipesan untuk Anda dari {starts_at} sampai {ends_at}.\n"
            "Lakukan check-in di meja dengan kartu atau kode QR.",
            "en": "Desk {desk_id} is booked for you from {starts_at} to {ends_at}.\n"
            "Check in at the desk with your badge or its QR code.",
        },
    ),
    "booking_reminder": Template(
        fields=("desk_id", "starts_at", "deadline_at"),
        subject={
            "id": "Check-in di meja {desk_id} sebelum {deadline_at}",
            "en": "Check in at desk {desk_id} before {deadline_at}",
        },
        body={
            "id": "Pemesanan Anda di meja {desk_id} mulai {starts_at}. Jika belum check-in "
            "sebelum {deadline_at}, meja akan dilepas untuk orang lain.",
            "en": "Your booking of desk {desk_id} started at {starts_at}. Without a check-in "
            "before {deadline_at} the desk is released to others.",
        },
    ),
    "booking_released": Template(
        fields=("desk_id", "starts_at", "reason"),
        subject={
            "id": "Pemesanan meja {desk_id} dilepas",
            "en": "Your booking of desk {desk_id} was released",
        },
        body={
            "id": "Pemesanan meja {desk_id} ({starts_at}) dilepas: {reason}.",
            "en": "Your booking of desk {desk_id} ({starts_at}) was released: {reason}.",
        },
    ),
    "visitor_arrived": Template(
        fields=("visitor", "arrived_at"),
        subject={"id": "Tamu Anda sudah tiba", "en": "Your visitor has arrived"},
        body={
            "id": "{visitor} sudah check-in di resepsionis pada {arrived_at}.",
            "en": "{visitor} checked in at reception at {arrived_at}.",
        },
    ),
    "visitor_invitation": Template(
        fields=("host", "starts_at", "ends_at", "place"),
        subject={"id": "Undangan kunjungan ke {place}", "en": "Your visit to {place}"},
        body={
            "id": "{host} mengundang Anda ke {place} dari {starts_at} sampai {ends_at}.\n"
            "Tunjukkan kode QR terlampir di resepsionis.",
            "en": "{host} invites you to {place} from {starts_at} to {ends_at}.\n"
            "Show the attached QR code at reception.",
        },
    ),
    "room_noshow_warning": Template(
        fields=("room", "starts_at", "release_at"),
        subject={
            "id": "Ruang {room} akan dilepas pada {release_at}",
            "en": "Room {room} will be released at {release_at}",
        },
        body={
            "id": "Belum ada orang terdeteksi di ruang {room} untuk rapat {starts_at}. "
            "Check-in di panel ruang sebelum {release_at} agar ruang tidak dilepas.",
            "en": "Nobody has been sensed in room {room} for the meeting at {starts_at}. "
            "Check in at the room panel before {release_at} to keep the room.",
        },
    ),
    "room_booked": Template(
        fields=("room", "starts_at", "ends_at"),
        subject={"id": "Ruang {room} dipesan", "en": "Room {room} booked"},
        body={
            "id": "Ruang {room} sudah dipesan untuk rapat Anda dari {starts_at} sampai "
            "{ends_at}.\nUndangan kalender terlampir. Check-in di panel ruang saat rapat mulai.",
            "en": "Room {room} is booked for your meeting from {starts_at} to {ends_at}.\n"
            "The calendar invitation is attached. Check in at the room panel when it starts.",
        },
    ),
    "room_released": Template(
        fields=("room", "starts_at"),
        subject={"id": "Pemesanan ruang {room} dilepas", "en": "Room {room} released"},
        body={
            "id": "Tidak ada orang terdeteksi di ruang {room} untuk rapat {starts_at}, "
            "jadi pemesanan dilepas untuk orang lain.",
            "en": "Nobody was sensed in room {room} for the meeting at {starts_at}, "
            "so the booking was released to others.",
        },
    ),
    "seat_cancelled": Template(
        fields=("route", "departs_at"),
        subject={
            "id": "Perjalanan {route} pukul {departs_at} dibatalkan",
            "en": "The {route} trip at {departs_at} is cancelled",
        },
        body={
            "id": "Operator membatalkan perjalanan {route} pukul {departs_at}. Reservasi "
            "kursi Anda berakhir; silakan pesan perjalanan lain.",
            "en": "The operator cancelled the {route} trip at {departs_at}. Your seat "
            "reservation has ended; please reserve another trip.",
        },
    ),
    "seat_reminder": Template(
        fields=("route", "stop", "departs_at"),
        subject={
            "id": "Kursi Anda di {route} berangkat {departs_at}",
            "en": "Your seat on {route} leaves at {departs_at}",
        },
        body={
            "id": "Kursi Anda di {route} berangkat dari {stop} pada {departs_at}.",
            "en": "Your seat on {route} leaves from {stop} at {departs_at}.",
        },
    ),
}


def missing_fields(kind: str, data: dict[str, Any]) -> list[str]:
    """The fields `kind` needs that `data` lacks; raises KeyError for an unknown kind."""
    return [f for f in KINDS[kind].fields if data.get(f) in (None, "")]


def _zone(data: dict[str, Any]) -> ZoneInfo:
    try:
        return ZoneInfo(str(data.get("timezone") or DEFAULT_TIMEZONE))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def _shown(field: str, value: Any, language: str, zone: ZoneInfo) -> str:
    if field.endswith("_at") and isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return value
        if at.tzinfo is not None:
            at = at.astimezone(zone)
        # Both languages write dates day-first; Indonesian uses a dot in times.
        clock = at.strftime("%H.%M") if language == "id" else at.strftime("%H:%M")
        label = at.tzname() or ""
        return f"{at.strftime('%d-%m-%Y')} {clock} {label}".strip()
    if field == "reason":
        return REASONS.get(str(value), {}).get(language, str(value))
    return str(value)


def render(kind: str, data: dict[str, Any], language: str) -> Rendered:
    """Subject, plain text and HTML of one notification in `language` ("id" or "en")."""
    template = KINDS[kind]
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    zone = _zone(data)
    values = {f: _shown(f, data.get(f, "?"), lang, zone) for f in template.fields}
    subject = template.subject[lang].format_map(values)
    text = template.body[lang].format_map(values)
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n"))
    footer = {
        "id": "Pesan otomatis dari Ruang. Atur notifikasi di dasbor.",
        "en": "An automatic message from Ruang. Change notifications on the dashboard.",
    }[lang]
    page = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>"
        '<body style="font-family:sans-serif;font-size:16px;color:#1a1a1a">'
        f'<h1 style="font-size:20px">{html.escape(subject)}</h1>{paragraphs}'
        f'<p style="color:#555;font-size:13px">{html.escape(footer)}</p></body></html>'
    )
    return Rendered(subject=subject, text=f"{text}\n\n-- \n{footer}\n", html=page)
