"""ORM models of notifications (0020): the outbox, its delivery log and per-person preferences.

They share `Base` with cloud/db/models.py; cloud/db/tables.py and the Alembic
environment import this module so the metadata is complete.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime

LANGUAGES = ("id", "en")
CHANNELS = ("email",)
_BIGID = BigInteger().with_variant(Integer, "sqlite")


class Notification(Base):
    """One thing to tell one person (or one outside address): the outbox and the in-app list.

    Written in the transaction of the change it reports. `person_id` rows show in
    that person's in-app list; `address` rows (a guest's email) exist only to be
    sent. `dedup_key` names the business event so a repeated write adds nothing.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("dedup_key", name="uq_notifications_dedup_key"),
        CheckConstraint(
            "(person_id IS NULL) <> (address IS NULL)", name="ck_notifications_one_recipient"
        ),
        Index("ix_notifications_person_created", "person_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    address: Mapped[str | None] = mapped_column(String(254))
    # Language for an address recipient; a person's comes from their preferences.
    language: Mapped[str | None] = mapped_column(String(2))
    kind: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Files sent with the email (an ICS, an SVG pass): [{filename, content_type, text}].
    attachments: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dedup_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NotificationDelivery(Base):
    """One notification on one channel, with its attempts: the delivery log.

    `status` is pending until sent, skipped (the channel is off for this person or
    there is no address), or gave_up after the last attempt.
    """

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "channel", name="uq_notification_delivery"),
        CheckConstraint(
            "status IN ('pending', 'sent', 'skipped', 'gave_up')",
            name="ck_notification_deliveries_status",
        ),
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NotificationPreference(Base):
    """A person's choices: language and the kinds they want no email for (in-app stays on)."""

    __tablename__ = "notification_preferences"

    person_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("people.id"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(2), default="id")
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    email_off_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
