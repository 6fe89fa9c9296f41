"""Live transport: detected stop arrivals/departures, trip assignments, cancellations, alerts.

See cloud/db/models_transport_live.py. Follows the seats migration (0012).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_GTFS = sa.String(64)
_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "transport_stop_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("trip_id", _GTFS, nullable=False),
        sa.Column("service_date", sa.String(8), nullable=False),
        sa.Column("stop_sequence", sa.Integer, nullable=False),
        sa.Column("stop_id", _GTFS, nullable=False),
        sa.Column("route_id", _GTFS, nullable=False),
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("arrival_at", _TS),
        sa.Column("departure_at", _TS),
        sa.Column("scheduled_arrival_at", _TS, nullable=False),
        sa.Column("scheduled_departure_at", _TS, nullable=False),
        sa.Column("stopped", sa.Boolean, nullable=False),
        sa.Column("inferred", sa.Boolean, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint(
            "trip_id", "service_date", "stop_sequence", name="uq_transport_stop_events_stop"
        ),
    )
    op.create_index(
        "ix_transport_stop_events_stop_day", "transport_stop_events", ["stop_id", "service_date"]
    )
    op.create_index("ix_transport_stop_events_vehicle_id", "transport_stop_events", ["vehicle_id"])
    op.create_table(
        "transport_trip_assignments",
        sa.Column("trip_id", _GTFS, primary_key=True),
        sa.Column("service_date", sa.String(8), primary_key=True),
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("assigned_at", _TS, nullable=False),
    )
    op.create_index(
        "ix_transport_trip_assignments_vehicle_id", "transport_trip_assignments", ["vehicle_id"]
    )
    op.create_table(
        "transport_trip_cancellations",
        sa.Column("trip_id", _GTFS, primary_key=True),
        sa.Column("service_date", sa.String(8), primary_key=True),
        sa.Column("reason", sa.String(200)),
        sa.Column("cancelled_at", _TS, nullable=False),
    )
    op.create_table(
        "transport_service_alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("header", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("effect", sa.String(32), nullable=False),
        sa.Column("route_id", _GTFS),
        sa.Column("stop_id", _GTFS),
        sa.Column("trip_id", _GTFS),
        sa.Column("starts_at", _TS),
        sa.Column("ends_at", _TS),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("transport_service_alerts")
    op.drop_table("transport_trip_cancellations")
    op.drop_index("ix_transport_trip_assignments_vehicle_id", "transport_trip_assignments")
    op.drop_table("transport_trip_assignments")
    op.drop_index("ix_transport_stop_events_vehicle_id", "transport_stop_events")
    op.drop_index("ix_transport_stop_events_stop_day", "transport_stop_events")
    op.drop_table("transport_stop_events")
