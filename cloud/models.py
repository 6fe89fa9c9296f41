"""SQL tables of the cloud state: nodes, desks and the de-duplicated event history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID_LENGTH = 64


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no timezone type and hands naive datetimes back; re-attaching
    UTC here keeps API output identical on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    bdseq: Mapped[int | None] = mapped_column(BigInteger)
    sw_version: Mapped[str | None] = mapped_column(String(64))
    # Cloud receive times, not edge timestamps: offline detection and birth/death
    # ordering must not depend on the edge clock (a last-will carries the time
    # the will was registered, which is before the birth it belongs to).
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_birth_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_death_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Desk(Base):
    __tablename__ = "desks"
    __table_args__ = (CheckConstraint("state IN ('free', 'occupied')", name="ck_desks_state"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id"), index=True)
    unit: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="free")
    occupant_badge: Mapped[str | None] = mapped_column(String(20))
    checked_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    present: Mapped[bool | None] = mapped_column(Boolean)
    presence_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_change_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unit_online: Mapped[bool | None] = mapped_column(Boolean)
    unit_firmware: Mapped[str | None] = mapped_column(String(32))


class Event(Base):
    """Every applied event and state message, once.

    The UNIQUE `message_id` is the de-duplication: a replayed message fails to
    insert (ON CONFLICT DO NOTHING) and is then not applied at all.
    """

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("message_id", name="uq_events_message_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    desk: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    badge: Mapped[str | None] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
