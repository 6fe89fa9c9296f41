"""Office transport: the GTFS static schedule, vehicles bound to edge nodes, stops near a site.

The schedule tables mirror GTFS files (cloud/db/models_transport.py); an import
replaces them all in one transaction. Vehicles carry their edge node (unique:
a node rides in one vehicle) and their state.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_GTFS = sa.String(64)
_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "transport_agencies",
        sa.Column("agency_id", _GTFS, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("lang", sa.String(16), nullable=True),
        sa.Column("phone", sa.String(64), nullable=True),
    )
    op.create_table(
        "transport_routes",
        sa.Column("route_id", _GTFS, primary_key=True),
        sa.Column(
            "agency_id",
            _GTFS,
            sa.ForeignKey("transport_agencies.agency_id"),
            nullable=False,
        ),
        sa.Column("short_name", sa.String(64), nullable=True),
        sa.Column("long_name", sa.String(200), nullable=True),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("route_type", sa.Integer(), nullable=False),
        sa.Column("color", sa.String(6), nullable=True),
        sa.Column("text_color", sa.String(6), nullable=True),
        sa.Column("sort_order", sa.Integer(), nullable=True),
    )
    op.create_table(
        "transport_stops",
        sa.Column("stop_id", _GTFS, primary_key=True),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("location_type", sa.Integer(), nullable=False),
        sa.Column("parent_station", _GTFS, nullable=True),
        sa.Column("wheelchair_boarding", sa.Integer(), nullable=True),
    )
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    op.create_table(
        "transport_calendar",
        sa.Column("service_id", _GTFS, primary_key=True),
        *(sa.Column(day, sa.Boolean(), nullable=False) for day in days),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
    )
    op.create_table(
        "transport_calendar_dates",
        sa.Column("service_id", _GTFS, primary_key=True),
        sa.Column("date", sa.Date(), primary_key=True),
        sa.Column("exception_type", sa.Integer(), nullable=False),
        sa.CheckConstraint("exception_type IN (1, 2)", name="ck_transport_calendar_dates_type"),
    )
    op.create_table(
        "transport_shapes",
        sa.Column("shape_id", _GTFS, primary_key=True),
        sa.Column("sequence", sa.Integer(), primary_key=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("dist_traveled", sa.Float(), nullable=True),
    )
    op.create_table(
        "transport_trips",
        sa.Column("trip_id", _GTFS, primary_key=True),
        sa.Column("route_id", _GTFS, sa.ForeignKey("transport_routes.route_id"), nullable=False),
        sa.Column("service_id", _GTFS, nullable=False),
        sa.Column("headsign", sa.String(200), nullable=True),
        sa.Column("short_name", sa.String(64), nullable=True),
        sa.Column("direction_id", sa.Integer(), nullable=True),
        sa.Column("block_id", _GTFS, nullable=True),
        sa.Column("shape_id", _GTFS, nullable=True),
        sa.Column("wheelchair_accessible", sa.Integer(), nullable=True),
        sa.Column("bikes_allowed", sa.Integer(), nullable=True),
    )
    op.create_index("ix_transport_trips_route_id", "transport_trips", ["route_id"])
    op.create_index("ix_transport_trips_service", "transport_trips", ["service_id"])
    op.create_table(
        "transport_stop_times",
        sa.Column(
            "trip_id",
            _GTFS,
            sa.ForeignKey("transport_trips.trip_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("stop_sequence", sa.Integer(), primary_key=True),
        sa.Column("stop_id", _GTFS, sa.ForeignKey("transport_stops.stop_id"), nullable=False),
        sa.Column("arrival_s", sa.Integer(), nullable=True),
        sa.Column("departure_s", sa.Integer(), nullable=True),
        sa.Column("headsign", sa.String(200), nullable=True),
        sa.Column("pickup_type", sa.Integer(), nullable=True),
        sa.Column("drop_off_type", sa.Integer(), nullable=True),
        sa.Column("dist_traveled", sa.Float(), nullable=True),
        sa.Column("timepoint", sa.Integer(), nullable=True),
    )
    # Departures from a stop after a time: the kiosk's and the departures board's query.
    op.create_index(
        "ix_transport_stop_times_stop", "transport_stop_times", ["stop_id", "departure_s"]
    )
    op.create_table(
        "transport_vehicles",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("wheelchair_accessible", sa.Boolean(), nullable=False),
        sa.Column("plate", sa.String(16), nullable=True),
        sa.Column("site_id", _ID, sa.ForeignKey("sites.id"), nullable=True),
        sa.Column("node_id", _ID, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_changed_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("kind IN ('shuttle', 'poolcar')", name="ck_transport_vehicles_kind"),
        sa.CheckConstraint(
            "state IN ('in_service', 'off_duty', 'offline', 'at_depot')",
            name="ck_transport_vehicles_state",
        ),
        sa.CheckConstraint("capacity >= seats AND seats >= 0", name="ck_transport_vehicles_seats"),
        sa.CheckConstraint(
            "kind = 'shuttle' OR (plate IS NOT NULL AND site_id IS NOT NULL)",
            name="ck_transport_vehicles_poolcar",
        ),
        # A node rides in one vehicle: positions and boardings it sends name that one.
        sa.UniqueConstraint("node_id", name="uq_transport_vehicles_node_id"),
    )
    op.create_index("ix_transport_vehicles_site_id", "transport_vehicles", ["site_id"])
    op.create_table(
        "transport_site_stops",
        sa.Column("site_id", _ID, sa.ForeignKey("sites.id"), primary_key=True),
        sa.Column("stop_id", _GTFS, primary_key=True),
        sa.Column("walk_m", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("transport_site_stops")
    op.drop_index("ix_transport_vehicles_site_id", table_name="transport_vehicles")
    op.drop_table("transport_vehicles")
    op.drop_index("ix_transport_stop_times_stop", table_name="transport_stop_times")
    op.drop_table("transport_stop_times")
    op.drop_index("ix_transport_trips_service", table_name="transport_trips")
    op.drop_index("ix_transport_trips_route_id", table_name="transport_trips")
    op.drop_table("transport_trips")
    op.drop_table("transport_shapes")
    op.drop_table("transport_calendar_dates")
    op.drop_table("transport_calendar")
    op.drop_table("transport_stops")
    op.drop_table("transport_routes")
    op.drop_table("transport_agencies")
