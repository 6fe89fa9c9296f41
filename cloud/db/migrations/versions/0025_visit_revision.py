"""Visits count their revisions: the guest's ICS carries it as SEQUENCE, so a calendar
applies an edit or a cancellation even when the mails arrive out of order.

Revision ID: 0025
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.drop_column("revision")
