"""Dead letters: messages that validated but could not be applied, kept for a replay.

A message that fails its SQL write on its own (its batch-mates succeed) or whose
edge clock lies outside the ingestion window is parked here with its raw bytes,
acknowledged, and shown on the fleet view; an admin replays or deletes it
(cloud/ingest/dead_letters.py). `nodes.clock_skew_at` is the cloud time of the node's
latest message refused for its clock (the fleet view's "clock skew" alarm).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("node", sa.String(64), nullable=True),
        sa.Column("topic", sa.String(256), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.UniqueConstraint("message_id", name="uq_dead_letters_message_id"),
    )
    op.create_index("ix_dead_letters_node", "dead_letters", ["node"])
    op.add_column("nodes", sa.Column("clock_skew_at", _TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("clock_skew_at")
    op.drop_index("ix_dead_letters_node", table_name="dead_letters")
    op.drop_table("dead_letters")
