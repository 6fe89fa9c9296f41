"""Initial schema: nodes, desks and the de-duplicated events history.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("bdseq", sa.BigInteger(), nullable=True),
        sa.Column("sw_version", sa.String(64), nullable=True),
        sa.Column("last_seen", _TS, nullable=True),
        sa.Column("last_birth_at", _TS, nullable=True),
        sa.Column("last_death_at", _TS, nullable=True),
    )
    op.create_table(
        "desks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id"), nullable=False),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("occupant_badge", sa.String(64), nullable=True),
        sa.Column("checked_in_at", _TS, nullable=True),
        sa.Column("present", sa.Boolean(), nullable=True),
        sa.Column("presence_changed_at", _TS, nullable=True),
        sa.Column("last_change_at", _TS, nullable=True),
        sa.Column("unit_online", sa.Boolean(), nullable=True),
        sa.Column("unit_firmware", sa.String(32), nullable=True),
        sa.CheckConstraint("state IN ('free', 'occupied')", name="ck_desks_state"),
    )
    op.create_index("ix_desks_node_id", "desks", ["node_id"])
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("desk", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("badge", sa.String(64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.UniqueConstraint("message_id", name="uq_events_message_id"),
    )
    op.create_index("ix_events_node", "events", ["node"])
    op.create_index("ix_events_desk", "events", ["desk"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("desks")
    op.drop_table("nodes")
