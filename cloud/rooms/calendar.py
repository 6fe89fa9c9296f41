"""Room booking invitations (iCalendar) and the per-person calendar subscription feed.

Lines are built with cloud/bookings/ics.py's folding and escaping. A person's
subscription URL is `{public_base_url}/api/v1/calendar/{token}.ics`: the token is
32 random bytes (URL-safe base64), only its SHA-256 is stored, a new one can be made
at any time and each can be revoked. The feed lists that person's desk and room
bookings and shuttle seat reservations (cloud/transport/reservations.py; waitlisted
seats as TENTATIVE) from 30 days back to 90 days ahead.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.ics import PRODID, _utc, escape_text, fold
from cloud.bookings.reads import desk_places, list_bookings
from cloud.bookings.schemas import BookingPublic
from cloud.db.tables import CALENDAR_TOKENS, RESERVATIONS, ROOMS, TRIP_SEATS
from cloud.errors import NotFound
from cloud.rooms.reads import list_room_bookings, person_exists
from cloud.rooms.schemas import RoomBookingPublic

_STATUS = {"booked": "CONFIRMED", "checked_in": "CONFIRMED", "completed": "CONFIRMED"}
_SEAT_STATUS = {"confirmed": "CONFIRMED", "boarded": "CONFIRMED", "waitlisted": "TENTATIVE"}
# A trip instance without a stored arrival shows as this long in a calendar.
SEAT_DEFAULT = timedelta(minutes=30)
FEED_BACK = timedelta(days=30)
FEED_AHEAD = timedelta(days=90)


def _calendar(events: list[list[str]], method: str) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    lines.append(f"METHOD:{method}")
    for event in events:
        lines += ["BEGIN:VEVENT", *event, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def room_event(
    b: RoomBookingPublic, room_name: str, now: datetime, host: str = "ruang"
) -> list[str]:
    summary = b.title or f"Rapat di {room_name}"
    return [
        f"UID:room-booking-{b.id}@{host}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(b.starts_at)}",
        f"DTEND:{_utc(b.ends_at)}",
        f"SUMMARY:{escape_text(summary)}",
        f"LOCATION:{escape_text(room_name)}",
        f"STATUS:{_STATUS.get(b.status, 'CANCELLED')}",
    ]


def invitation(b: RoomBookingPublic, room_name: str, now: datetime) -> str:
    """The ICS attached to a room booking's confirmation."""
    return _calendar([room_event(b, room_name, now)], "PUBLISH")


async def room_names(conn: AsyncConnection, room_ids: Iterable[str]) -> dict[str, str]:
    ids = list(set(room_ids))
    if not ids:
        return {}
    rows = await conn.execute(select(ROOMS.c.id, ROOMS.c.name).where(ROOMS.c.id.in_(ids)))
    return {r.id: r.name for r in rows}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(conn: AsyncConnection, person_id: str, now: datetime) -> str:
    await person_exists(conn, person_id)
    token = secrets.token_urlsafe(32)
    await conn.execute(
        insert(CALENDAR_TOKENS).values(token_hash=_hash(token), person_id=person_id, created_at=now)
    )
    return token


async def revoke_tokens(conn: AsyncConnection, person_id: str, now: datetime) -> int:
    """Revokes every live subscription URL of the person; returns how many."""
    result = await conn.execute(
        update(CALENDAR_TOKENS)
        .where(CALENDAR_TOKENS.c.person_id == person_id, CALENDAR_TOKENS.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)


async def token_person(conn: AsyncConnection, token: str) -> str:
    """The person of a live token; an unknown or revoked one reads as not found."""
    row = (
        await conn.execute(
            select(CALENDAR_TOKENS.c.person_id).where(
                CALENDAR_TOKENS.c.token_hash == _hash(token),
                CALENDAR_TOKENS.c.revoked_at.is_(None),
            )
        )
    ).first()
    if row is None:
        raise NotFound("no such calendar", title="Calendar not found")
    return str(row.person_id)


def _desk_events(
    rows: Iterable[BookingPublic], places: Mapping[str, str], now: datetime
) -> list[list[str]]:
    return [
        [
            f"UID:booking-{b.id}@ruang",
            f"DTSTAMP:{_utc(now)}",
            f"DTSTART:{_utc(b.starts_at)}",
            f"DTEND:{_utc(b.ends_at)}",
            f"SUMMARY:{escape_text(f'Meja {b.desk_id}')}",
            f"LOCATION:{escape_text(places.get(b.desk_id, b.desk_id))}",
            f"STATUS:{_STATUS.get(b.status, 'CANCELLED')}",
        ]
        for b in rows
    ]


async def _seat_events(
    conn: AsyncConnection, person_id: str, start: datetime, end: datetime, now: datetime
) -> list[list[str]]:
    rows = await conn.execute(
        select(RESERVATIONS, TRIP_SEATS.c.arrives_at)
        .select_from(
            RESERVATIONS.outerjoin(
                TRIP_SEATS,
                (TRIP_SEATS.c.trip_id == RESERVATIONS.c.trip_id)
                & (TRIP_SEATS.c.service_date == RESERVATIONS.c.service_date),
            )
        )
        .where(
            RESERVATIONS.c.person_id == person_id,
            RESERVATIONS.c.walk_on.is_(False),
            RESERVATIONS.c.departs_at >= start,
            RESERVATIONS.c.departs_at < end,
        )
        .order_by(RESERVATIONS.c.departs_at)
        .limit(5000)
    )
    events = []
    for r in rows:
        ends = r.arrives_at if r.arrives_at and r.arrives_at > r.departs_at else None
        events.append(
            [
                f"UID:seat-{r.id}@ruang",
                f"DTSTAMP:{_utc(now)}",
                f"DTSTART:{_utc(r.departs_at)}",
                f"DTEND:{_utc(ends or r.departs_at + SEAT_DEFAULT)}",
                f"SUMMARY:{escape_text(f'Shuttle {r.trip_id}')}",
                f"LOCATION:{escape_text(r.from_stop)}",
                f"STATUS:{_SEAT_STATUS.get(r.status, 'CANCELLED')}",
            ]
        )
    return events


async def person_feed(conn: AsyncConnection, person_id: str, now: datetime) -> str:
    """The person's desk and room bookings and shuttle seats around now as one calendar."""
    start, end = now - FEED_BACK, now + FEED_AHEAD
    desks = await list_bookings(conn, person=person_id, start=start, end=end, limit=5000)
    places = await desk_places(conn, [b.desk_id for b in desks])
    rooms = await list_room_bookings(conn, person=person_id, start=start, end=end, limit=5000)
    names = await room_names(conn, [b.room_id for b in rooms])
    events = _desk_events(desks, places, now)
    events += [room_event(b, names.get(b.room_id, b.room_id), now) for b in rooms]
    events += await _seat_events(conn, person_id, start, end, now)
    return _calendar(events, "PUBLISH")


def now_utc() -> datetime:
    return datetime.now(UTC)
