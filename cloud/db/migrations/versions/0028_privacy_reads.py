"""The personal-data access audit: one row per read of another person's personal data.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_reads",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("what", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64), nullable=True),
        sa.Column("site_id", sa.String(64), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_privacy_reads_at", "privacy_reads", ["at"])
    op.create_index("ix_privacy_reads_actor_at", "privacy_reads", ["actor", "at"])
    op.create_index("ix_privacy_reads_subject_at", "privacy_reads", ["subject", "at"])


def downgrade() -> None:
    op.drop_table("privacy_reads")
