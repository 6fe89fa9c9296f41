"""ORM models of office transport: the GTFS static schedule, the vehicles, the stops near a site.

The schedule tables mirror GTFS (agency, routes, stops, trips, stop_times,
calendar, calendar_dates, shapes) with GTFS ids as primary keys, so an import
and an export are a copy each way. The schedule is replaced as a whole by an
import (cloud/transport/gtfs_import.py): other tables refer to trips and stops
by their GTFS id without a foreign key, so a re-import never fails on them;
what a new schedule no longer has simply stops matching.

Times of day in `transport_stop_times` are seconds after the service day's
"noon minus 12 h" (GTFS), so 25:10:00, a trip running past midnight, is 90600.

They share `Base` (one metadata) with cloud/db/models.py; cloud/db/tables.py and
the Alembic environment import this module so the metadata is complete.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime

# GTFS ids are free text; 64 characters cover every feed seen in practice.
GTFS_ID = 64
VEHICLE_KINDS = ("shuttle", "poolcar")
VEHICLE_STATES = ("in_service", "off_duty", "offline", "at_depot")


class Agency(Base):
    """agency.txt: who runs the service (the building operator, for the office shuttles)."""

    __tablename__ = "transport_agencies"

    agency_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500))
    timezone: Mapped[str] = mapped_column(String(64))
    lang: Mapped[str | None] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(64))


class Route(Base):
    """routes.txt: a line (e.g. "Hunian ASN 1 - KIPP")."""

    __tablename__ = "transport_routes"

    route_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("transport_agencies.agency_id"))
    short_name: Mapped[str | None] = mapped_column(String(64))
    long_name: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(500))
    route_type: Mapped[int] = mapped_column(Integer)
    color: Mapped[str | None] = mapped_column(String(6))
    text_color: Mapped[str | None] = mapped_column(String(6))
    sort_order: Mapped[int | None] = mapped_column(Integer)


class Stop(Base):
    """stops.txt: a place where riders board or alight (or a station grouping stops)."""

    __tablename__ = "transport_stops"

    stop_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(500))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    location_type: Mapped[int] = mapped_column(Integer, default=0)
    parent_station: Mapped[str | None] = mapped_column(String(GTFS_ID))
    wheelchair_boarding: Mapped[int | None] = mapped_column(Integer)


class Calendar(Base):
    """calendar.txt: on which weekdays, between two dates, a service runs."""

    __tablename__ = "transport_calendar"

    service_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    monday: Mapped[bool] = mapped_column(Boolean)
    tuesday: Mapped[bool] = mapped_column(Boolean)
    wednesday: Mapped[bool] = mapped_column(Boolean)
    thursday: Mapped[bool] = mapped_column(Boolean)
    friday: Mapped[bool] = mapped_column(Boolean)
    saturday: Mapped[bool] = mapped_column(Boolean)
    sunday: Mapped[bool] = mapped_column(Boolean)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)


class CalendarDate(Base):
    """calendar_dates.txt: a service added (1) or removed (2) on one date, e.g. a holiday."""

    __tablename__ = "transport_calendar_dates"
    __table_args__ = (
        CheckConstraint("exception_type IN (1, 2)", name="ck_transport_calendar_dates_type"),
    )

    # No foreign key: GTFS allows a service defined by calendar_dates alone.
    service_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    exception_type: Mapped[int] = mapped_column(Integer)


class ShapeVertex(Base):
    """shapes.txt: one vertex of the path a trip's vehicle drives."""

    __tablename__ = "transport_shapes"

    shape_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    # In the feed's own unit (metres in the sample); schedule.py maps it onto metres.
    dist_traveled: Mapped[float | None] = mapped_column(Float)


class Trip(Base):
    """trips.txt: one run of a route on the days its service runs."""

    __tablename__ = "transport_trips"
    __table_args__ = (Index("ix_transport_trips_service", "service_id"),)

    trip_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    route_id: Mapped[str] = mapped_column(ForeignKey("transport_routes.route_id"), index=True)
    service_id: Mapped[str] = mapped_column(String(GTFS_ID))
    headsign: Mapped[str | None] = mapped_column(String(200))
    short_name: Mapped[str | None] = mapped_column(String(64))
    direction_id: Mapped[int | None] = mapped_column(Integer)
    block_id: Mapped[str | None] = mapped_column(String(GTFS_ID))
    shape_id: Mapped[str | None] = mapped_column(String(GTFS_ID))
    wheelchair_accessible: Mapped[int | None] = mapped_column(Integer)
    bikes_allowed: Mapped[int | None] = mapped_column(Integer)


class StopTime(Base):
    """stop_times.txt: when a trip is at a stop (seconds after the service day's noon - 12 h)."""

    __tablename__ = "transport_stop_times"
    __table_args__ = (Index("ix_transport_stop_times_stop", "stop_id", "departure_s"),)

    trip_id: Mapped[str] = mapped_column(
        ForeignKey("transport_trips.trip_id", ondelete="CASCADE"), primary_key=True
    )
    stop_sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    stop_id: Mapped[str] = mapped_column(ForeignKey("transport_stops.stop_id"))
    # NULL between timepoints: schedule.py interpolates them along the shape.
    arrival_s: Mapped[int | None] = mapped_column(Integer)
    departure_s: Mapped[int | None] = mapped_column(Integer)
    headsign: Mapped[str | None] = mapped_column(String(200))
    pickup_type: Mapped[int | None] = mapped_column(Integer)
    drop_off_type: Mapped[int | None] = mapped_column(Integer)
    dist_traveled: Mapped[float | None] = mapped_column(Float)
    timepoint: Mapped[int | None] = mapped_column(Integer)


class Vehicle(Base):
    """A shuttle or a pool car, bound to the edge node that rides in it (GPS + badge reader).

    `capacity` is how many riders it may carry (seated + standing for a shuttle);
    `seats` its seats (a pool car's capacity). A pool car has a plate and a home
    site; a shuttle may have a depot site. `node_id` is unique: a node rides in
    one vehicle.
    """

    __tablename__ = "transport_vehicles"
    __table_args__ = (
        CheckConstraint(f"kind IN {VEHICLE_KINDS!r}", name="ck_transport_vehicles_kind"),
        CheckConstraint(f"state IN {VEHICLE_STATES!r}", name="ck_transport_vehicles_state"),
        CheckConstraint("capacity >= seats AND seats >= 0", name="ck_transport_vehicles_seats"),
        CheckConstraint(
            "kind = 'shuttle' OR (plate IS NOT NULL AND site_id IS NOT NULL)",
            name="ck_transport_vehicles_poolcar",
        ),
        UniqueConstraint("node_id", name="uq_transport_vehicles_node_id"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    seats: Mapped[int] = mapped_column(Integer)
    wheelchair_accessible: Mapped[bool] = mapped_column(Boolean, default=False)
    plate: Mapped[str | None] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), index=True)
    node_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    state: Mapped[str] = mapped_column(String(16), default="at_depot")
    state_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SiteStop(Base):
    """A stop near a site (walking distance), whose departures the site's kiosk shows."""

    __tablename__ = "transport_site_stops"

    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    # No foreign key: the association outlives a re-import that drops and restores the stop.
    stop_id: Mapped[str] = mapped_column(String(GTFS_ID), primary_key=True)
    walk_m: Mapped[int | None] = mapped_column(Integer)
