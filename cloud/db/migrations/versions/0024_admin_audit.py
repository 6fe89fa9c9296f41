"""Admin audit log: who did what to which target, when (cloud/admin/audit.py); enrolment
tokens get their creator and a withdrawal time (cloud/fleet/enrolment.py).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_roles", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_admin_audit_at", "admin_audit", ["at"])
    op.create_index("ix_admin_audit_actor_at", "admin_audit", ["actor", "at"])
    op.create_index("ix_admin_audit_action_at", "admin_audit", ["action", "at"])
    op.create_index("ix_admin_audit_target", "admin_audit", ["target"])
    op.create_index("ix_admin_audit_site_id", "admin_audit", ["site_id"])
    # Enrolment tokens listed and withdrawn from the admin console.
    with op.batch_alter_table("enrolment_tokens") as batch:
        batch.add_column(sa.Column("created_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrolment_tokens") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("created_by")
    op.drop_table("admin_audit")
