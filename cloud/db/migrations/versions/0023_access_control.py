"""Door access control: doors, access groups, grants with weekly schedules, holidays,
the versioned change history, the access log and each node's verified audit chain.

Revision ID: 0023
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0014"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.String(64)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "access_doors",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("site_id", _ID, sa.ForeignKey("sites.id"), nullable=False, index=True),
        sa.Column("floor_id", _ID, sa.ForeignKey("floors.id"), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("node_id", _ID, nullable=True, index=True),
        sa.Column("zone_from", _ID, nullable=True),
        sa.Column("zone_to", _ID, nullable=True),
        sa.Column("anti_passback", sa.Boolean(), nullable=False),
        sa.Column("anti_passback_reset_s", sa.Integer(), nullable=False),
    )
    op.create_table(
        "access_groups",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("site_id", _ID, sa.ForeignKey("sites.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(16), nullable=False),
        sa.Column("value", sa.String(200), nullable=True),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "rule IN ('agency', 'zone', 'floor', 'role', 'people')", name="ck_access_groups_rule"
        ),
    )
    op.create_table(
        "access_grants",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column(
            "group_id",
            _ID,
            sa.ForeignKey("access_groups.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "door_id",
            _ID,
            sa.ForeignKey("access_doors.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("open_on_holidays", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("group_id", "door_id", name="uq_access_grants_group_door"),
    )
    op.create_table(
        "access_holidays",
        sa.Column("site_id", _ID, sa.ForeignKey("sites.id"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "access_changes",
        sa.Column("version", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("site_id", _ID, nullable=True, index=True),
        sa.Column("data", sa.JSON(), nullable=True),
    )
    op.create_table(
        "access_log",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("node", _ID, nullable=False),
        sa.Column("door", _ID, nullable=False),
        sa.Column("badge", sa.String(64), nullable=True),
        sa.Column("person_id", _ID, nullable=True),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("ts", _TS, nullable=False, index=True),
        sa.Column("ts_raw", sa.Float(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("audit_hash", sa.String(64), nullable=False),
        sa.Column("chain_ok", sa.Boolean(), nullable=True),
        sa.Column("chain_problem", sa.String(200), nullable=True),
    )
    op.create_index("ix_access_log_door_ts", "access_log", ["door", "ts"])
    op.create_index("ix_access_log_person_ts", "access_log", ["person_id", "ts"])
    op.create_index("ix_access_log_node_seq", "access_log", ["node", "audit_seq"])
    op.create_table(
        "access_chains",
        sa.Column("node", _ID, primary_key=True),
        sa.Column("verified_seq", sa.BigInteger(), nullable=False),
        sa.Column("verified_hash", sa.String(64), nullable=False),
        sa.Column("broken_seq", sa.BigInteger(), nullable=True),
        sa.Column("broken_at", _TS, nullable=True),
        sa.Column("problem", sa.String(200), nullable=True),
        sa.Column("gap_since", _TS, nullable=True),
    )


def downgrade() -> None:
    for table in (
        "access_chains",
        "access_log",
        "access_changes",
        "access_holidays",
        "access_grants",
        "access_groups",
        "access_doors",
    ):
        op.drop_table(table)
