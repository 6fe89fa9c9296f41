"""ORM models of meeting rooms as bookable places (0021): bookings, sensed presence, calendars.

They share `Base` with cloud/db/models.py. A room booking is like a desk booking
(cloud/db/models.py `Booking`) but for a room and a group: the database refuses two
active bookings of one room that overlap (PostgreSQL exclusion constraint, SQLite
triggers; see migration 0021). `person_id` is the organiser; a booking made at the
room's panel ("book now") has none.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime

ROOM_BOOKING_STATUSES = ("booked", "checked_in", "completed", "cancelled", "no_show")
ACTIVE_ROOM_STATUSES = ("booked", "checked_in")


class RoomBooking(Base):
    """One meeting in one room; a recurring series is one row per occurrence."""

    __tablename__ = "room_bookings"
    __table_args__ = (Index("ix_room_bookings_room_starts", "room_id", "starts_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id"))
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    # The meeting's subject: shown on the panel only to the room's own agency,
    # or to everyone where the site allows it (sites.room_panel_titles).
    title: Mapped[str | None] = mapped_column(String(200))
    attendees: Mapped[int | None] = mapped_column(Integer)
    series_id: Mapped[str | None] = mapped_column(String(64), index=True)
    walk_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # First time the room's radar sensed someone during the booking.
    sensed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    release_reason: Mapped[str | None] = mapped_column(String(32))


class RoomPresenceChange(Base):
    """Each change of a room sensor's reading: the sensed side of room analytics."""

    __tablename__ = "room_presence_changes"
    __table_args__ = (Index("ix_room_presence_changes_room_ts", "room_id", "ts"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    room_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    occupied: Mapped[bool] = mapped_column(Boolean)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)


class CalendarToken(Base):
    """A person's calendar subscription URL; only the token's SHA-256 is kept."""

    __tablename__ = "calendar_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
