"""Visitors: a host's invitation of a guest with its pass, temporary card and check-in/out.

Revision ID: 0022
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("site_id", _ID, sa.ForeignKey("sites.id"), nullable=False, index=True),
        sa.Column("host_person_id", _ID, sa.ForeignKey("people.id"), nullable=False, index=True),
        sa.Column("guest_name", sa.String(200), nullable=False),
        sa.Column("guest_email", sa.String(254), nullable=True),
        sa.Column("guest_phone", sa.String(32), nullable=True),
        sa.Column("organisation", sa.String(200), nullable=True),
        sa.Column("purpose", sa.String(500), nullable=True),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("starts_at", _TS, nullable=False, index=True),
        sa.Column("ends_at", _TS, nullable=False, index=True),
        sa.Column("floor_id", _ID, nullable=True),
        sa.Column("doors", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pass_code", sa.String(16), nullable=False, unique=True),
        sa.Column("card_uid", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("checked_in_at", _TS, nullable=True),
        sa.Column("checked_out_at", _TS, nullable=True),
        sa.Column("cancelled_at", _TS, nullable=True),
        sa.CheckConstraint(
            "status IN ('invited', 'checked_in', 'checked_out', 'cancelled')",
            name="ck_visits_status",
        ),
        sa.CheckConstraint("ends_at > starts_at", name="ck_visits_window"),
    )
    op.create_index(
        "uq_visits_active_card", "visits", ["card_uid"], unique=True,
        postgresql_where=sa.text("status = 'checked_in'"),
        sqlite_where=sa.text("status = 'checked_in'"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("uq_visits_active_card", table_name="visits")
    op.drop_table("visits")
