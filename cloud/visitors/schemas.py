"""Pydantic schemas of visits: what a host sends, what the host and reception read."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from ruang.contract import ID_PATTERN

VisitStatus = Literal["invited", "checked_in", "checked_out", "cancelled"]
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{6,31}$")
# A temporary card: an NFC UID (hex) or a BLE badge id, as cloud/people/schemas.py takes them.
_CARD = re.compile(r"^(?:[0-9A-Fa-f]{8,20}|ble:[A-Za-z0-9:_.-]{1,60})$")
MAX_VISIT_HOURS = 24 * 14


class VisitBase(BaseModel):
    """The guest and the window of a visit."""

    model_config = ConfigDict(str_strip_whitespace=True)

    guest_name: str = Field(min_length=1, max_length=200)
    guest_email: str | None = Field(default=None, max_length=254)
    guest_phone: str | None = Field(default=None, max_length=32)
    organisation: str | None = Field(default=None, max_length=200)
    purpose: str | None = Field(default=None, max_length=500)
    language: Literal["id", "en"] = Field(default="id", description="of the guest's message")
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @field_validator("guest_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not an email address")
        return value

    @field_validator("guest_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.match(value):
            raise ValueError("not a phone number")
        return value

    @model_validator(mode="after")
    def _window(self) -> VisitBase:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if (self.ends_at - self.starts_at).total_seconds() > MAX_VISIT_HOURS * 3600:
            raise ValueError(f"a visit lasts at most {MAX_VISIT_HOURS} hours")
        if self.guest_email is None and self.guest_phone is None:
            raise ValueError("an email address or a phone number of the guest is needed")
        return self


class VisitCreate(VisitBase):
    """An invitation. Where the guest may go defaults to the host's floor and the lobby doors."""

    host_person_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="admins only; others host their own guests"
    )
    site_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="default: the host's home site"
    )
    floor_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="default: the floor of the host's desk"
    )
    doors: list[str] | None = Field(
        default=None,
        max_length=64,
        description="managed door ids; default: the doors of the floor and the site's doors "
        "on no floor (lobby/entrance)",
    )

    @field_validator("doors")
    @classmethod
    def _door_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not all(re.match(ID_PATTERN, d) for d in value):
            raise ValueError("door ids are letters, digits, '_', '.', '-'")
        return value


class VisitPublic(VisitBase):
    """A visit as its host, the site's reception and admins read it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: str
    host_person_id: str
    floor_id: str | None
    doors: list[str]
    status: VisitStatus
    card_uid: str | None
    created_at: datetime
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    cancelled_at: datetime | None

    @model_validator(mode="after")
    def _window(self) -> VisitPublic:
        return self  # stored rows were checked when written


class CheckIn(BaseModel):
    """What reception sends: the scanned QR, the typed code, or a visit id found by search."""

    code: str | None = Field(default=None, min_length=4, max_length=128)
    visit_id: int | None = Field(default=None, ge=1, le=2**53)
    card_uid: str | None = Field(
        default=None, max_length=64, description="a temporary card handed to the guest"
    )

    @field_validator("card_uid")
    @classmethod
    def _card(cls, value: str | None) -> str | None:
        if value is not None and not _CARD.match(value):
            raise ValueError("an NFC UID (hex) or ble:<id>")
        return value

    @model_validator(mode="after")
    def _one(self) -> CheckIn:
        if (self.code is None) == (self.visit_id is None):
            raise ValueError("give either code or visit_id")
        return self


class PurgeResult(BaseModel):
    deleted: int
