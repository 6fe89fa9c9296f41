"""Fleet view: latest node health on `nodes`, per-device status, and a bounded health history.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.String(64)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NODE_COLUMNS = (
    ("config_version", sa.Integer()),
    ("outbox_depth", sa.Integer()),
    ("clock_offset_s", sa.Float()),
    ("last_health_at", _TS),
    ("health", sa.JSON()),
    ("alarms", sa.JSON()),
    ("devices_declared", sa.JSON()),
)


def upgrade() -> None:
    # Plain ADD COLUMN, all nullable: a batch rebuild of `nodes` is not needed and
    # nodes that never sent health keep NULL (unknown), not a made-up zero.
    for name, type_ in _NODE_COLUMNS:
        op.add_column("nodes", sa.Column(name, type_, nullable=True))
    op.create_table(
        "device_status",
        sa.Column("node_id", _ID, primary_key=True),
        sa.Column("device", _ID, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("rejected_frames", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_reading_at", _TS, nullable=True),
        sa.Column("battery_pct", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(128), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "node_health_samples",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("node_id", _ID, nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("cpu_pct", sa.Float(), nullable=True),
        sa.Column("rss_bytes", sa.BigInteger(), nullable=True),
        sa.Column("mem_available_bytes", sa.BigInteger(), nullable=True),
        sa.Column("disk_free_bytes", sa.BigInteger(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("outbox_depth", sa.Integer(), nullable=True),
        sa.Column("clock_offset_s", sa.Float(), nullable=True),
    )
    op.create_index("ix_node_health_samples_node_ts", "node_health_samples", ["node_id", "ts"])
    # Retention deletes by time across all nodes: without this it scans the table.
    op.create_index("ix_node_health_samples_ts", "node_health_samples", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_node_health_samples_ts", table_name="node_health_samples")
    op.drop_index("ix_node_health_samples_node_ts", table_name="node_health_samples")
    op.drop_table("node_health_samples")
    op.drop_table("device_status")
    # batch_alter_table: SQLite before 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("nodes") as batch:
        for name, _ in reversed(_NODE_COLUMNS):
            batch.drop_column(name)
