"""The agencies that opted in to the attendance export (cloud/attendance/).

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attendance_agencies",
        sa.Column("agency", sa.String(200), primary_key=True),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("include_identity", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("remote_weekdays", sa.JSON(), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("attendance_agencies")
