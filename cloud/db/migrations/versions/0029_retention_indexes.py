"""Indexes on the timestamps the retention purge (cloud/privacy/retention.py) deletes by
(`access_log.ts` and `transport_boardings.ts` have theirs already).

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_events_ts", "events"),
    ("ix_transport_car_uses_ts", "transport_car_uses"),
    ("ix_transport_car_positions_ts", "transport_car_positions"),
)


def upgrade() -> None:
    for name, table in INDEXES:
        op.create_index(name, table, ["ts"])


def downgrade() -> None:
    for name, table in INDEXES:
        op.drop_index(name, table_name=table)
