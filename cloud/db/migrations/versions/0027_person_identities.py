"""Per-person identity state: session epoch for sign-out-everywhere, deactivation, the
provider that created the person just in time and their unit (cloud/db/models_identity.py).

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_identities",
        sa.Column(
            "person_id",
            sa.String(64),
            sa.ForeignKey("people.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sessions_not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issuer", sa.String(500), nullable=True),
        sa.Column("unit", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("person_identities")
