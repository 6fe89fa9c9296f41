"""SCIM provisioning: people get an active flag, a work unit, the identity system's login
name, key and name parts, timestamps and a removal mark; groups and their members
(cloud/scim/).

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_NEW_PEOPLE_COLUMNS = (
    "removed_at", "updated_at", "created_at", "family_name", "given_name", "external_id",
    "user_name", "unit", "active",
)  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("unit", sa.String(200), nullable=True))
        batch.add_column(sa.Column("user_name", sa.String(256), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(256), nullable=True))
        batch.add_column(sa.Column("given_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("family_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_people_login", "people", [sa.text("lower(coalesce(user_name, id))")])
    op.create_index("ix_people_external_id", "people", ["external_id"])
    op.create_table(
        "person_groups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("display_name", sa.String(256), nullable=False, unique=True),
        sa.Column("external_id", sa.String(256), nullable=True),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("site_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_person_groups_external_id", "person_groups", ["external_id"])
    op.create_index("ix_person_groups_site_id", "person_groups", ["site_id"])
    op.create_table(
        "person_group_members",
        sa.Column(
            "group_id",
            sa.String(36),
            sa.ForeignKey("person_groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("people.id"), primary_key=True),
    )
    op.create_index("ix_person_group_members_person_id", "person_group_members", ["person_id"])


def downgrade() -> None:
    op.drop_table("person_group_members")
    op.drop_table("person_groups")
    op.drop_index("ix_people_external_id", "people")
    op.drop_index("ix_people_login", "people")
    with op.batch_alter_table("people") as batch:
        for column in _NEW_PEOPLE_COLUMNS:
            batch.drop_column(column)
