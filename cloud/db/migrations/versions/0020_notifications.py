"""Notifications: the outbox of things to tell people, its delivery log, per-person preferences.

`notifications` is written in the transaction of the change it reports (a
booking confirmed, a desk released...) and is also the person's in-app list;
`notification_deliveries` holds each channel's attempts (the delivery log the
dispatcher in cloud/notifications/dispatcher.py works from); a person's language
and email opt-outs live in `notification_preferences`.

Revision ID: 0020
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0024"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("person_id", _ID, sa.ForeignKey("people.id"), nullable=True),
        sa.Column("address", sa.String(254), nullable=True),
        sa.Column("language", sa.String(2), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("read_at", _TS, nullable=True),
        sa.UniqueConstraint("dedup_key", name="uq_notifications_dedup_key"),
        sa.CheckConstraint(
            "(person_id IS NULL) <> (address IS NULL)", name="ck_notifications_one_recipient"
        ),
    )
    op.create_index("ix_notifications_person_created", "notifications", ["person_id", "created_at"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column(
            "notification_id",
            _BIGID,
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.UniqueConstraint("notification_id", "channel", name="uq_notification_delivery"),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'skipped', 'gave_up')",
            name="ck_notification_deliveries_status",
        ),
    )
    op.create_index(
        "ix_notification_deliveries_due",
        "notification_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_table(
        "notification_preferences",
        sa.Column("person_id", _ID, sa.ForeignKey("people.id"), primary_key=True),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("email_enabled", sa.Boolean(), nullable=False),
        sa.Column("email_off_kinds", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_preferences")
    op.drop_index("ix_notification_deliveries_due", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_index("ix_notifications_person_created", table_name="notifications")
    op.drop_table("notifications")
