"""Room geometry and occupancy for the live floor map.

Floors already keep their drawing (width, height, outline) in `floors.geometry`
(JSON, 0002); rooms had no place on the plan. This adds their rectangle and a
nullable `occupied` that a room sensor can fill (NULL = not known).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = ("x", "y", "w", "h")


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add several columns in one ALTER otherwise.
    with op.batch_alter_table("rooms") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch.add_column(sa.Column("occupied", sa.Boolean(), nullable=True))
        batch.add_column(
            sa.Column("occupied_changed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("occupied_changed_at")
        batch.drop_column("occupied")
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
