"""Node enrolment: one-time enrolment tokens and per-node broker credentials.

Tokens are stored as their SHA-256 only; credentials as the Mosquitto PBKDF2
hash the broker's password file needs, so the file can be rebuilt from the
database at any time without ever keeping a node's password.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "enrolment_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        sa.Column("used_by_hardware_id", sa.String(128), nullable=True),
    )
    op.create_index("ix_enrolment_tokens_node_id", "enrolment_tokens", ["node_id"])
    op.create_table(
        "node_credentials",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("hardware_id", sa.String(128), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("revoked_at", _TS, nullable=True),
    )
    op.create_index("ix_node_credentials_node_id", "node_credentials", ["node_id"])
    # One live credential per node, enforced by the database so two racing
    # enrolments of the same node cannot both leave a usable password behind.
    op.create_index(
        "uq_node_credentials_active",
        "node_credentials",
        ["node_id"],
        unique=True,
        postgresql_where=sa.text("NOT revoked"),
        sqlite_where=sa.text("NOT revoked"),
    )


def downgrade() -> None:
    op.drop_table("node_credentials")
    op.drop_table("enrolment_tokens")
