"""ORM models of what vehicles' nodes decided at their doors (migration 0014).

`transport_boardings` holds one row per `boarding` event (its message id is the
primary key, so a replayed event can never count twice), with what ridership is
counted by: trip, service day, stop, local hour. `transport_car_uses` holds one
row per `poolcar` event. Neither keeps a raw badge: the badge is mapped to its
holder through the badge table when the event is applied (docs/privacy.md).

They share `Base` with cloud/db/models.py; cloud/db/tables.py and the Alembic
environment import this module so the metadata is complete.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime


class TransportBoarding(Base):
    """A badge at a shuttle's door and the node's decision; ridership counts allowed rows."""

    __tablename__ = "transport_boardings"
    __table_args__ = (
        Index("ix_transport_boardings_trip", "trip_id", "service_date"),
        Index("ix_transport_boardings_ts", "ts"),
    )

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(ID_LENGTH))
    vehicle_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    reader: Mapped[str] = mapped_column(String(ID_LENGTH))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    # The local (WITA) hour of `ts`, 0..23: ridership per hour without time-zone SQL.
    hour: Mapped[int] = mapped_column(Integer)
    trip_id: Mapped[str | None] = mapped_column(String(64))
    service_date: Mapped[str | None] = mapped_column(String(8))
    stop_id: Mapped[str | None] = mapped_column(String(64))
    allowed: Mapped[bool] = mapped_column(Boolean)
    # The node's reason (reserved, walk_on, full, unknown_badge, no_trip, not_allowed).
    reason: Mapped[str] = mapped_column(String(32))
    reservation: Mapped[str | None] = mapped_column(String(64))
    # The badge's holder at the time of applying; None for an unknown badge.
    person_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # What the cloud found applying it: the seat service's result (reserved, walk_on,
    # walk_on_over, already_boarded, unknown_trip...), or unknown_vehicle / not_applied.
    outcome: Mapped[str | None] = mapped_column(String(32))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)


class TransportCarUse(Base):
    """A badge at a pool car's reader: pick-up, return or refusal, as the node decided it."""

    __tablename__ = "transport_car_uses"
    __table_args__ = (
        Index("ix_transport_car_uses_vehicle_ts", "vehicle_id", "ts"),
        Index("ix_transport_car_uses_ts", "ts"),  # the retention purge
    )

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(ID_LENGTH))
    vehicle_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    reader: Mapped[str] = mapped_column(String(ID_LENGTH))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(128))
    booking: Mapped[str | None] = mapped_column(String(64))
    person_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # The pool-car service's result (picked_up, returned, duplicate, unknown_booking...).
    outcome: Mapped[str | None] = mapped_column(String(32))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
