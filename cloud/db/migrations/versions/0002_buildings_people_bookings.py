"""Buildings (sites, floors, zones, rooms), desk layout columns, people, badges and bookings.

Double booking is refused by the database on both backends: PostgreSQL gets
exclusion constraints over `tstzrange(starts_at, ends_at)` (btree_gist), SQLite
gets triggers that abort an insert or update overlapping an active booking.
SQLite runs one writer at a time, so a trigger's check and the write it guards
cannot interleave with another writer.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.String(64)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACTIVE = "status IN ('booked', 'checked_in')"

# The error texts double as the markers cloud.bookings.store looks for, so the
# SQLite trigger messages carry the PostgreSQL constraint names.
DESK_OVERLAP = "ex_bookings_desk_overlap"
PERSON_OVERLAP = "ex_bookings_person_overlap"


def _sqlite_triggers() -> list[str]:
    overlap = "b.starts_at < NEW.ends_at AND NEW.starts_at < b.ends_at"
    active_b = "b.status IN ('booked', 'checked_in')"
    active_new = "NEW.status IN ('booked', 'checked_in')"
    statements = []
    for event, extra in (("INSERT", ""), ("UPDATE", " AND b.id <> NEW.id")):
        name = event.lower()
        statements.append(f"""
CREATE TRIGGER trg_bookings_desk_overlap_{name} BEFORE {event} ON bookings
WHEN {active_new}
BEGIN
  SELECT RAISE(ABORT, '{DESK_OVERLAP}') WHERE EXISTS (
    SELECT 1 FROM bookings AS b
    WHERE b.desk_id = NEW.desk_id AND {active_b} AND {overlap}{extra});
END""")
        statements.append(f"""
CREATE TRIGGER trg_bookings_person_overlap_{name} BEFORE {event} ON bookings
WHEN {active_new} AND NEW.exclusive_person
BEGIN
  SELECT RAISE(ABORT, '{PERSON_OVERLAP}') WHERE EXISTS (
    SELECT 1 FROM bookings AS b
    WHERE b.person_id = NEW.person_id AND {active_b} AND b.exclusive_person
      AND {overlap}{extra});
END""")
    return statements


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "sites",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("max_booking_hours", sa.Integer(), nullable=False),
        sa.Column("max_days_ahead", sa.Integer(), nullable=False),
        sa.Column("one_desk_per_person_per_slot", sa.Boolean(), nullable=False),
        sa.Column("checkin_grace_min", sa.Integer(), nullable=False),
        sa.Column("away_release_min", sa.Integer(), nullable=False),
    )
    op.create_table(
        "buildings",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("site_id", _ID, sa.ForeignKey("sites.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "floors",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("building_id", _ID, sa.ForeignKey("buildings.id"), nullable=False, index=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=True),
    )
    op.create_table(
        "zones",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("floor_id", _ID, sa.ForeignKey("floors.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("reserved_for_agency", sa.String(200), nullable=True),
    )
    op.create_table(
        "rooms",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("zone_id", _ID, sa.ForeignKey("zones.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("node_id", _ID, nullable=True),
        sa.Column("sensor_id", _ID, nullable=True),
    )
    op.create_table(
        "people",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("agency", sa.String(200), nullable=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("nip", sa.String(32), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("host_person_id", _ID, sa.ForeignKey("people.id"), nullable=True),
        sa.Column("valid_from", _TS, nullable=True),
        sa.Column("valid_until", _TS, nullable=True),
        sa.Column("pass_number", sa.String(64), nullable=True),
        sa.CheckConstraint("kind IN ('asn', 'guest')", name="ck_people_kind"),
        sa.CheckConstraint(
            "role IN ('asn', 'guest', 'facility_manager', 'technician', 'admin')",
            name="ck_people_role",
        ),
    )
    op.create_table(
        "badges",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("uid", sa.String(64), nullable=False),
        sa.Column("person_id", _ID, sa.ForeignKey("people.id"), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.CheckConstraint("kind IN ('nfc', 'ble')", name="ck_badges_kind"),
        sa.CheckConstraint(
            "status IN ('active', 'revoked', 'lost', 'replaced')", name="ck_badges_status"
        ),
    )
    op.create_index(
        "uq_badges_active_uid",
        "badges",
        ["uid"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
        sqlite_where=sa.text("status = 'active'"),
    )
    with op.batch_alter_table("desks") as batch:
        batch.add_column(sa.Column("floor_id", _ID, nullable=True))
        batch.add_column(sa.Column("zone_id", _ID, nullable=True))
        batch.add_column(sa.Column("label", sa.String(128), nullable=True))
        batch.add_column(
            sa.Column("mode", sa.String(16), nullable=False, server_default="reservable")
        )
        batch.add_column(sa.Column("features", sa.JSON(), nullable=False, server_default="[]"))
        for coord in ("x", "y", "w", "h"):
            batch.add_column(sa.Column(coord, sa.Float(), nullable=True))
        batch.add_column(sa.Column("assigned_person_id", _ID, nullable=True))
        batch.create_foreign_key("fk_desks_floor_id", "floors", ["floor_id"], ["id"])
        batch.create_foreign_key("fk_desks_zone_id", "zones", ["zone_id"], ["id"])
        batch.create_foreign_key(
            "fk_desks_assigned_person_id", "people", ["assigned_person_id"], ["id"]
        )
        batch.create_check_constraint(
            "ck_desks_mode", "mode IN ('reservable', 'drop_in', 'assigned', 'unavailable')"
        )
    op.create_index("ix_desks_floor_id", "desks", ["floor_id"])
    op.create_index("ix_desks_zone_id", "desks", ["zone_id"])
    op.create_table(
        "booking_series",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("desk_id", _ID, sa.ForeignKey("desks.id"), nullable=False),
        sa.Column("person_id", _ID, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("first_day", sa.String(10), nullable=False),
        sa.Column("last_day", sa.String(10), nullable=False),
        sa.Column("start_time", sa.String(5), nullable=False),
        sa.Column("end_time", sa.String(5), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "bookings",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("desk_id", _ID, sa.ForeignKey("desks.id"), nullable=False),
        sa.Column("person_id", _ID, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exclusive_person", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("cancelled_at", _TS, nullable=True),
        sa.Column("released_at", _TS, nullable=True),
        sa.Column("release_reason", sa.String(200), nullable=True),
        sa.Column("series_id", sa.String(36), sa.ForeignKey("booking_series.id"), nullable=True),
        sa.CheckConstraint(
            "status IN ('booked', 'checked_in', 'completed', 'cancelled', 'released', 'no_show')",
            name="ck_bookings_status",
        ),
        sa.CheckConstraint("ends_at > starts_at", name="ck_bookings_range"),
    )
    op.create_index("ix_bookings_desk_time", "bookings", ["desk_id", "starts_at", "ends_at"])
    op.create_index("ix_bookings_person_time", "bookings", ["person_id", "starts_at"])
    op.create_index("ix_bookings_series_id", "bookings", ["series_id"])
    if sqlite:
        for statement in _sqlite_triggers():
            op.execute(statement)
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            f"ALTER TABLE bookings ADD CONSTRAINT {DESK_OVERLAP} EXCLUDE USING gist "
            f"(desk_id WITH =, tstzrange(starts_at, ends_at) WITH &&) WHERE ({_ACTIVE})"
        )
        op.execute(
            f"ALTER TABLE bookings ADD CONSTRAINT {PERSON_OVERLAP} EXCLUDE USING gist "
            f"(person_id WITH =, tstzrange(starts_at, ends_at) WITH &&) "
            f"WHERE ({_ACTIVE} AND exclusive_person)"
        )


def downgrade() -> None:
    op.drop_table("bookings")
    op.drop_table("booking_series")
    op.drop_index("ix_desks_zone_id", "desks")
    op.drop_index("ix_desks_floor_id", "desks")
    with op.batch_alter_table("desks") as batch:
        batch.drop_constraint("ck_desks_mode", type_="check")
        batch.drop_constraint("fk_desks_assigned_person_id", type_="foreignkey")
        batch.drop_constraint("fk_desks_zone_id", type_="foreignkey")
        batch.drop_constraint("fk_desks_floor_id", type_="foreignkey")
        for column in (
            "assigned_person_id",
            "h",
            "w",
            "y",
            "x",
            "features",
            "mode",
            "label",
            "zone_id",
            "floor_id",
        ):
            batch.drop_column(column)
    op.drop_table("badges")
    op.drop_table("people")
    op.drop_table("rooms")
    op.drop_table("zones")
    op.drop_table("floors")
    op.drop_table("buildings")
    op.drop_table("sites")
