"""ORM models of live transport operations: detected stop arrivals/departures, the
dispatcher's trip assignments, trip cancellations and service alerts.

Trips and stops are referred to by GTFS id without foreign keys, like the rest of
transport (cloud/db/models_transport.py): a schedule re-import never fails on them.
Nothing here names a person: a stop event is a vehicle at a stop, an alert is text
the dispatcher wrote for riders.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime
from cloud.db.models_transport import GTFS_ID


class StopEvent(Base):
    """A vehicle's detected arrival and departure at one stop of one trip, for on-time
    performance. Upserted as detection improves (a backlog fills in a dead zone)."""

    __tablename__ = "transport_stop_events"
    __table_args__ = (
        UniqueConstraint(
            "trip_id", "service_date", "stop_sequence", name="uq_transport_stop_events_stop"
        ),
        Index("ix_transport_stop_events_stop_day", "stop_id", "service_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trip_id: Mapped[str] = mapped_column(String(GTFS_ID))
    service_date: Mapped[str] = mapped_column(String(8))  # YYYYMMDD
    stop_sequence: Mapped[int] = mapped_column(Integer)
    stop_id: Mapped[str] = mapped_column(String(GTFS_ID))
    route_id: Mapped[str] = mapped_column(String(GTFS_ID))
    vehicle_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    arrival_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    departure_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    scheduled_arrival_at: Mapped[datetime] = mapped_column(UtcDateTime)
    scheduled_departure_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stopped: Mapped[bool] = mapped_column(Boolean)
    inferred: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TripAssignment(Base):
    """The dispatcher put `vehicle_id` on a trip of a service day (one vehicle per trip)."""

    __tablename__ = "transport_trip_assignments"

    trip_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    service_date: Mapped[str] = mapped_column(String(8), primary_key=True)
    vehicle_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TripCancellation(Base):
    """A trip of a service day that will not run (GTFS-RT CANCELED)."""

    __tablename__ = "transport_trip_cancellations"

    trip_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    service_date: Mapped[str] = mapped_column(String(8), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(200))
    cancelled_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ServiceAlert(Base):
    """A service alert typed by the dispatcher (GTFS-RT Alert)."""

    __tablename__ = "transport_service_alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    header: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    cause: Mapped[str] = mapped_column(String(32))
    effect: Mapped[str] = mapped_column(String(32))
    route_id: Mapped[str | None] = mapped_column(String(GTFS_ID))
    stop_id: Mapped[str | None] = mapped_column(String(GTFS_ID))
    trip_id: Mapped[str | None] = mapped_column(String(GTFS_ID))
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
