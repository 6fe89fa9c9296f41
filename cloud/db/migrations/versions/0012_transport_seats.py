"""Shuttle seat reservations (a counter row per trip instance) and pool-car bookings.

Seats: `transport_trip_seats` holds capacity and counts of one trip instance; its
CHECK constraint refuses any write that would put more riders on it than seats,
and a partial unique index allows one active reservation per person per trip
instance. Pool cars: overlapping active bookings of one car are refused by an
exclusion constraint on PostgreSQL and by triggers on SQLite (as desks in 0002).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.String(64)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACTIVE_RES = "status IN ('confirmed', 'waitlisted', 'boarded')"
_ACTIVE_CAR = "status IN ('requested', 'approved', 'picked_up')"
CAR_OVERLAP = "ex_transport_car_bookings_vehicle_overlap"


def _sqlite_triggers() -> list[str]:
    overlap = "b.starts_at < NEW.ends_at AND NEW.starts_at < b.ends_at"
    active_b = "b.status IN ('requested', 'approved', 'picked_up')"
    active_new = "NEW.status IN ('requested', 'approved', 'picked_up')"
    statements = []
    for event, extra in (("INSERT", ""), ("UPDATE", " AND b.id <> NEW.id")):
        statements.append(f"""
CREATE TRIGGER trg_transport_car_overlap_{event.lower()} BEFORE {event}
ON transport_car_bookings
WHEN {active_new}
BEGIN
  SELECT RAISE(ABORT, '{CAR_OVERLAP}') WHERE EXISTS (
    SELECT 1 FROM transport_car_bookings AS b
    WHERE b.vehicle_id = NEW.vehicle_id AND {active_b} AND {overlap}{extra});
END""")
    return statements


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "transport_trip_seats",
        sa.Column("trip_id", _ID, primary_key=True),
        sa.Column("service_date", sa.String(8), primary_key=True),
        sa.Column("vehicle_id", _ID, nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("confirmed", sa.Integer(), nullable=False),
        sa.Column("walk_ons", sa.Integer(), nullable=False),
        sa.Column("walk_ons_over", sa.Integer(), nullable=False),
        sa.Column("departs_at", _TS, nullable=False),
        sa.Column("arrives_at", _TS, nullable=False),
        sa.CheckConstraint(
            "capacity >= 0 AND confirmed >= 0 AND walk_ons >= 0 AND walk_ons_over >= 0 "
            "AND confirmed + walk_ons <= capacity",
            name="ck_transport_trip_seats_capacity",
        ),
    )
    op.create_table(
        "transport_reservations",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("trip_id", _ID, nullable=False),
        sa.Column("service_date", sa.String(8), nullable=False),
        sa.Column("person_id", _ID, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("from_stop", _ID, nullable=False),
        sa.Column("to_stop", _ID, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("walk_on", sa.Boolean(), nullable=False),
        sa.Column("departs_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("promoted_at", _TS, nullable=True),
        sa.Column("boarded_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.CheckConstraint(
            "status IN ('confirmed', 'waitlisted', 'boarded', 'cancelled', 'no_show', 'expired')",
            name="ck_transport_res_status",
        ),
        sa.ForeignKeyConstraint(
            ["trip_id", "service_date"],
            ["transport_trip_seats.trip_id", "transport_trip_seats.service_date"],
            name="fk_transport_reservations_trip",
        ),
    )
    op.create_index(
        "uq_transport_reservations_person_active",
        "transport_reservations",
        ["trip_id", "service_date", "person_id"],
        unique=True,
        postgresql_where=sa.text(_ACTIVE_RES),
        sqlite_where=sa.text(_ACTIVE_RES),
    )
    op.create_index(
        "ix_transport_reservations_queue",
        "transport_reservations",
        ["trip_id", "service_date", "status", "id"],
    )
    op.create_index(
        "ix_transport_reservations_due", "transport_reservations", ["status", "departs_at"]
    )
    op.create_index(
        "ix_transport_reservations_person", "transport_reservations", ["person_id", "created_at"]
    )
    op.create_table(
        "transport_car_bookings",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("person_id", _ID, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("agency", sa.String(200), nullable=True),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("decided_by", _ID, nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decision_note", sa.String(500), nullable=True),
        sa.Column("cancelled_at", _TS, nullable=True),
        sa.Column("picked_up_at", _TS, nullable=True),
        sa.Column("returned_at", _TS, nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'rejected', 'cancelled', 'picked_up', 'returned')",
            name="ck_transport_car_status",
        ),
        sa.CheckConstraint("ends_at > starts_at", name="ck_transport_car_range"),
    )
    op.create_index(
        "ix_transport_car_bookings_vehicle",
        "transport_car_bookings",
        ["vehicle_id", "starts_at", "ends_at"],
    )
    op.create_index(
        "ix_transport_car_bookings_person", "transport_car_bookings", ["person_id", "starts_at"]
    )
    op.create_index(
        "ix_transport_car_bookings_status", "transport_car_bookings", ["status", "ends_at"]
    )
    op.create_table(
        "transport_car_positions",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("booking_id", _BIGID, sa.ForeignKey("transport_car_bookings.id"), nullable=False),
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.UniqueConstraint("booking_id", "ts", name="uq_transport_car_positions_ts"),
    )
    if sqlite:
        for statement in _sqlite_triggers():
            op.execute(statement)
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            f"ALTER TABLE transport_car_bookings ADD CONSTRAINT {CAR_OVERLAP} EXCLUDE USING gist "
            f"(vehicle_id WITH =, tstzrange(starts_at, ends_at) WITH &&) WHERE ({_ACTIVE_CAR})"
        )


def downgrade() -> None:
    op.drop_table("transport_car_positions")
    op.drop_table("transport_car_bookings")
    op.drop_table("transport_reservations")
    op.drop_table("transport_trip_seats")
