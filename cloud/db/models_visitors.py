"""ORM model of visits (docs/visitors.md): a host's invitation of a guest, its pass, its
temporary card and its check-in/out. Guest contact data is personal (docs/privacy.md) and
deleted `visitor_retention_days` after the visit's window ends (cloud/visitors/retention.py).

It shares `Base` with cloud/db/models.py; cloud/db/tables.py and the Alembic environment
import this module so the metadata is complete.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime

VISIT_STATUSES = ("invited", "checked_in", "checked_out", "cancelled")


class Visit(Base):
    """One guest's visit to one site in one time window, hosted by one person."""

    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint(f"status IN {VISIT_STATUSES!r}", name="ck_visits_status"),
        CheckConstraint("ends_at > starts_at", name="ck_visits_window"),
        # A temporary card identifies one guest at a time (while checked in).
        Index(
            "uq_visits_active_card",
            "card_uid",
            unique=True,
            postgresql_where=text("status = 'checked_in'"),
            sqlite_where=text("status = 'checked_in'"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    host_person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    guest_name: Mapped[str] = mapped_column(String(200))
    guest_email: Mapped[str | None] = mapped_column(String(254))
    guest_phone: Mapped[str | None] = mapped_column(String(32))
    organisation: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(2), default="id")
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    floor_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # The managed doors (access_doors ids) the visit opens, resolved when invited.
    doors: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="invited")
    # The pass's short code (typed at reception); the QR carries it signed.
    pass_code: Mapped[str] = mapped_column(String(16), unique=True)
    # A temporary card handed out at check-in (upper-case hex UID, or `ble:<id>`).
    card_uid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Grows with every edit and the cancellation: the ICS SEQUENCE (RFC 5546).
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    checked_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    checked_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
