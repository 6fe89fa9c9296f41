"""A person's home site, so site-scoped roles see only their own site's people and badges.

Nullable and without a foreign key: rosters may arrive before the layout that
creates the site, and a person with no home site is simply managed by admins
only (see cloud/people/access.py).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("site_id", sa.String(64), nullable=True))
        batch.create_index("ix_people_site_id", ["site_id"])


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_index("ix_people_site_id")
        batch.drop_column("site_id")
