"""ORM models of shuttle seat reservations and pool-car bookings (migration 0012).

Capacity and conflicts are the database's job, as for desks (cloud/db/models.py):

* `transport_trip_seats` is one counter row per trip instance (trip id + service
  day). A reservation takes a seat by a conditional UPDATE of that row
  (`confirmed + walk_ons < capacity`), and a CHECK constraint refuses any write
  that would overbook, whatever the code above it does.
* `transport_car_bookings` cannot overlap for one car while active: an exclusion
  constraint on PostgreSQL, triggers on SQLite (the desk bookings' approach).

They share `Base` with cloud/db/models.py; cloud/db/tables.py and the Alembic
environment import this module so the metadata is complete.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime

RESERVATION_STATUSES = ("confirmed", "waitlisted", "boarded", "cancelled", "no_show", "expired")
# A person holds at most one of these per trip instance; the others are history.
ACTIVE_RESERVATION_STATUSES = ("confirmed", "waitlisted", "boarded")
ACTIVE_RESERVATION_SQL = "status IN ('confirmed', 'waitlisted', 'boarded')"
CAR_BOOKING_STATUSES = ("requested", "approved", "rejected", "cancelled", "picked_up", "returned")
# These hold the car for their time range; the others free it.
ACTIVE_CAR_STATUSES = ("requested", "approved", "picked_up")
ACTIVE_CAR_SQL = "status IN ('requested', 'approved', 'picked_up')"
# Constraint names double as the markers the services map to a 409 (SQLite's
# triggers raise the same text).
SEATS_CHECK = "ck_transport_trip_seats_capacity"
RESERVATION_UNIQUE = "uq_transport_reservations_person_active"
CAR_OVERLAP = "ex_transport_car_bookings_vehicle_overlap"

_BIGID = BigInteger().with_variant(Integer, "sqlite")


class TripSeats(Base):
    """The seat counter of one trip instance; `confirmed` counts confirmed and boarded
    reservations, `walk_ons` riders admitted without one within free capacity, and
    `walk_ons_over` riders a vehicle admitted beyond it (decided offline on a stale
    snapshot: counted, never refused after the fact)."""

    __tablename__ = "transport_trip_seats"
    __table_args__ = (
        CheckConstraint(
            "capacity >= 0 AND confirmed >= 0 AND walk_ons >= 0 AND walk_ons_over >= 0 "
            "AND confirmed + walk_ons <= capacity",
            name=SEATS_CHECK,
        ),
    )

    trip_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    service_date: Mapped[str] = mapped_column(String(8), primary_key=True)  # YYYYMMDD
    vehicle_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    capacity: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    walk_ons: Mapped[int] = mapped_column(Integer, default=0)
    walk_ons_over: Mapped[int] = mapped_column(Integer, default=0)
    departs_at: Mapped[datetime] = mapped_column(UtcDateTime)
    arrives_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SeatReservation(Base):
    """A person's seat (or place in the waitlist) on a trip instance, from a stop.

    `walk_on` rows are riders who boarded without a reservation: they keep the
    one-per-person rule and make a replayed boarding a no-op.
    """

    __tablename__ = "transport_reservations"
    __table_args__ = (
        CheckConstraint(f"status IN {RESERVATION_STATUSES!r}", name="ck_transport_res_status"),
        ForeignKeyConstraint(
            ["trip_id", "service_date"],
            ["transport_trip_seats.trip_id", "transport_trip_seats.service_date"],
            name="fk_transport_reservations_trip",
        ),
        Index(
            RESERVATION_UNIQUE,
            "trip_id",
            "service_date",
            "person_id",
            unique=True,
            postgresql_where=text(ACTIVE_RESERVATION_SQL),
            sqlite_where=text(ACTIVE_RESERVATION_SQL),
        ),
        Index("ix_transport_reservations_queue", "trip_id", "service_date", "status", "id"),
        Index("ix_transport_reservations_due", "status", "departs_at"),
        Index("ix_transport_reservations_person", "person_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    trip_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    service_date: Mapped[str] = mapped_column(String(8))
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    from_stop: Mapped[str] = mapped_column(String(ID_LENGTH))
    to_stop: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    walk_on: Mapped[bool] = mapped_column(Boolean, default=False)
    # Scheduled departure from `from_stop`: the no-show job's deadline.
    departs_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    promoted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    boarded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CarBooking(Base):
    """A pool car booked for an official trip, from request to return."""

    __tablename__ = "transport_car_bookings"
    __table_args__ = (
        CheckConstraint(f"status IN {CAR_BOOKING_STATUSES!r}", name="ck_transport_car_status"),
        CheckConstraint("ends_at > starts_at", name="ck_transport_car_range"),
        Index("ix_transport_car_bookings_vehicle", "vehicle_id", "starts_at", "ends_at"),
        Index("ix_transport_car_bookings_person", "person_id", "starts_at"),
        Index("ix_transport_car_bookings_status", "status", "ends_at"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    vehicle_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    # Copied from the person when booked: the approvers of this agency decide.
    agency: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(500))
    destination: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(500))
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    picked_up_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Trip log, written on return from the positions below (haversine sum).
    distance_m: Mapped[float | None] = mapped_column(Float)


class CarPosition(Base):
    """A pool car's GNSS fix while it is picked up: the route trace of the booking."""

    __tablename__ = "transport_car_positions"
    __table_args__ = (
        UniqueConstraint("booking_id", "ts", name="uq_transport_car_positions_ts"),
        Index("ix_transport_car_positions_ts", "ts"),  # the retention purge
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("transport_car_bookings.id"))
    vehicle_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
