"""What vehicles' nodes decided at their doors: boardings (ridership) and pool-car uses.

One row per `boarding` / `poolcar` event, keyed by its message id, so a replayed
event never counts twice. No raw badge: the holder's person id, mapped when the
event is applied (docs/privacy.md).

Revision ID: 0014
Revises: 0012 (0013, the tracking tables, when merged: the merger fixes the chain)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "transport_boardings",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("node", _ID, nullable=False),
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("reader", _ID, nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("trip_id", sa.String(64), nullable=True),
        sa.Column("service_date", sa.String(8), nullable=True),
        sa.Column("stop_id", sa.String(64), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("reservation", sa.String(64), nullable=True),
        sa.Column("person_id", _ID, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
    )
    op.create_index(
        "ix_transport_boardings_trip", "transport_boardings", ["trip_id", "service_date"]
    )
    op.create_index("ix_transport_boardings_ts", "transport_boardings", ["ts"])
    op.create_index("ix_transport_boardings_vehicle_id", "transport_boardings", ["vehicle_id"])
    op.create_table(
        "transport_car_uses",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("node", _ID, nullable=False),
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("reader", _ID, nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("booking", sa.String(64), nullable=True),
        sa.Column("person_id", _ID, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
    )
    op.create_index("ix_transport_car_uses_vehicle_ts", "transport_car_uses", ["vehicle_id", "ts"])


def downgrade() -> None:
    op.drop_index("ix_transport_car_uses_vehicle_ts", table_name="transport_car_uses")
    op.drop_table("transport_car_uses")
    op.drop_index("ix_transport_boardings_vehicle_id", table_name="transport_boardings")
    op.drop_index("ix_transport_boardings_ts", table_name="transport_boardings")
    op.drop_index("ix_transport_boardings_trip", table_name="transport_boardings")
    op.drop_table("transport_boardings")
