"""Meeting rooms bookable: room bookings, sensed room presence history, calendar tokens.

Double booking of a room is refused by the database on both backends, like desks
(0002): PostgreSQL gets an exclusion constraint over `tstzrange(starts_at, ends_at)`
per room (btree_gist, created in 0002), SQLite gets triggers that abort an insert or
update overlapping an active booking of the same room (one writer at a time, so the
check and the write it guards cannot interleave with another writer).

Revision ID: 0021
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0022"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.String(64)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACTIVE = "status IN ('booked', 'checked_in')"
# The SQLite trigger message carries the PostgreSQL constraint name, so
# cloud.bookings.store maps both to the same 409.
ROOM_OVERLAP = "ex_room_bookings_overlap"


def _sqlite_triggers() -> list[str]:
    statements = []
    for event, extra in (("INSERT", ""), ("UPDATE", " AND b.id <> NEW.id")):
        statements.append(f"""
CREATE TRIGGER trg_room_bookings_overlap_{event.lower()} BEFORE {event} ON room_bookings
WHEN NEW.{_ACTIVE}
BEGIN
  SELECT RAISE(ABORT, '{ROOM_OVERLAP}') WHERE EXISTS (
    SELECT 1 FROM room_bookings AS b
    WHERE b.room_id = NEW.room_id AND b.{_ACTIVE}
      AND b.starts_at < NEW.ends_at AND NEW.starts_at < b.ends_at{extra});
END""")
    return statements


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column("room_panel_titles", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "room_bookings",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("room_id", _ID, sa.ForeignKey("rooms.id"), nullable=False),
        sa.Column("person_id", _ID, sa.ForeignKey("people.id"), nullable=True, index=True),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("attendees", sa.Integer(), nullable=True),
        sa.Column("series_id", sa.String(64), nullable=True, index=True),
        sa.Column("walk_up", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("checked_in_at", _TS, nullable=True),
        sa.Column("sensed_at", _TS, nullable=True),
        sa.Column("warned_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("release_reason", sa.String(32), nullable=True),
        sa.CheckConstraint("ends_at > starts_at", name="ck_room_bookings_order"),
        sa.CheckConstraint(
            "status IN ('booked', 'checked_in', 'completed', 'cancelled', 'no_show')",
            name="ck_room_bookings_status",
        ),
    )
    op.create_index("ix_room_bookings_room_starts", "room_bookings", ["room_id", "starts_at"])
    if sqlite:
        for statement in _sqlite_triggers():
            op.execute(statement)
    else:
        op.execute(
            f"ALTER TABLE room_bookings ADD CONSTRAINT {ROOM_OVERLAP} EXCLUDE USING gist "
            f"(room_id WITH =, tstzrange(starts_at, ends_at) WITH &&) WHERE ({_ACTIVE})"
        )
    op.create_table(
        "room_presence_changes",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("room_id", _ID, nullable=False),
        sa.Column("occupied", sa.Boolean(), nullable=False),
        sa.Column("ts", _TS, nullable=False),
    )
    op.create_index("ix_room_presence_changes_room_ts", "room_presence_changes", ["room_id", "ts"])
    op.create_table(
        "calendar_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("person_id", _ID, sa.ForeignKey("people.id"), nullable=False, index=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("calendar_tokens")
    op.drop_index("ix_room_presence_changes_room_ts", table_name="room_presence_changes")
    op.drop_table("room_presence_changes")
    op.drop_index("ix_room_bookings_room_starts", table_name="room_bookings")
    op.drop_table("room_bookings")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("room_panel_titles")
