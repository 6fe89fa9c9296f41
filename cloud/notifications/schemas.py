"""Request and response bodies of the notification API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Language = Literal["id", "en"]


class NotificationPublic(BaseModel):
    """An in-app notification, rendered in the reader's language."""

    id: int
    kind: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class NotificationList(BaseModel):
    items: list[NotificationPublic]
    unread: int


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    marked: int


class PreferencesBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Language = "id"
    email_enabled: bool = Field(default=True, description="false: no email at all, in-app only")
    email_off_kinds: list[str] = Field(
        default_factory=list, max_length=32, description="kinds sent in-app only"
    )


class PreferencesUpdate(PreferencesBase):
    pass


class PreferencesPublic(PreferencesBase):
    kinds: list[str] = Field(description="every notification kind there is")


class DeliveryPublic(BaseModel):
    """One row of the delivery log: bookkeeping only, no message body."""

    id: int
    notification_id: int
    kind: str
    person_id: str | None
    address: str | None = Field(description="a guest's address, masked except its domain")
    channel: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
