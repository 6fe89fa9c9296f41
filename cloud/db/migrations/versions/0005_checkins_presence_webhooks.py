"""Booking check-in times, presence history for analytics, webhook subscriptions and deliveries.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN (not a batch table rebuild): on SQLite a rebuild would drop
    # the triggers that refuse double bookings.
    op.add_column("bookings", sa.Column("checked_in_at", _TS, nullable=True))
    op.add_column("bookings", sa.Column("checked_out_at", _TS, nullable=True))
    op.add_column(
        "bookings", sa.Column("walk_up", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "presence_changes",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("desk_id", sa.String(64), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("ts", _TS, nullable=False),
    )
    op.create_index("ix_presence_changes_desk_ts", "presence_changes", ["desk_id", "ts"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("cursor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column(
            "subscription_id", _BIGID, sa.ForeignKey("webhook_subscriptions.id"), nullable=False
        ),
        sa.Column("event_id", _BIGID, sa.ForeignKey("integration_events.id"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("gave_up", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["delivered_at", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_subscriptions")
    op.drop_index("ix_presence_changes_desk_ts", table_name="presence_changes")
    op.drop_table("presence_changes")
    for column in ("walk_up", "checked_out_at", "checked_in_at"):
        op.drop_column("bookings", column)
