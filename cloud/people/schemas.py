"""HTTP API schemas of people, badges and the nodes' badge allowlists."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PersonKind = Literal["asn", "guest"]
Role = Literal["asn", "guest", "facility_manager", "technician", "admin"]
BadgeKind = Literal["nfc", "ble"]
BadgeStatus = Literal["active", "revoked", "lost", "replaced"]
_NFC_UID = re.compile(r"^[0-9A-F]{8,20}$")
_BLE_UID = re.compile(r"^ble:[A-Za-z0-9:_.-]{1,60}$")


class PersonBase(BaseModel):
    kind: PersonKind
    name: str = Field(min_length=1, max_length=200)
    agency: str | None = Field(default=None, max_length=200, description="instansi")
    role: Role
    email: str | None = Field(default=None, max_length=254)
    host_person_id: str | None = Field(default=None, description="guests: the ASN hosting them")
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    pass_number: str | None = Field(default=None, max_length=64)
    site_id: str | None = Field(
        default=None,
        max_length=64,
        description="home site: its facility managers manage this "
        "person and their badges; none = admins only",
    )


class PersonCreate(PersonBase):
    id: str = Field(min_length=1, max_length=64)
    nip: str | None = Field(
        default=None, pattern=r"^\d{18}$", description="NIP, 18 digits; personal data"
    )

    @model_validator(mode="after")
    def _guest_rules(self) -> PersonCreate:
        if self.kind == "guest" and self.host_person_id is None:
            raise ValueError("a guest needs host_person_id")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class PersonPublic(PersonBase):
    """A person as lists show them: never the NIP."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    unit: str | None = Field(default=None, description="work unit, from the identity system")
    active: bool = Field(
        default=True, description="false: deprovisioned (SCIM); holds no active badge"
    )


class PersonPrivate(PersonPublic):
    """Includes personal data (NIP): only for the person themself and admins."""

    nip: str | None = None


class RowError(BaseModel):
    line: int = Field(description="line number in the uploaded file (the header is line 1)")
    reason: str


class PeopleImportPublic(BaseModel):
    created: int
    updated: int
    badges_issued: int = 0


class BadgeBase(BaseModel):
    # The uid's form depends on the kind: say so in the schema too, so that a client
    # (or a fuzzer) can tell a valid badge from an invalid one without asking.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {
                        "kind": {"const": "nfc"},
                        "uid": {"pattern": r"^[ \t]*[0-9A-Fa-f]{8,20}[ \t]*$"},
                    }
                },
                {"properties": {"kind": {"const": "ble"}, "uid": {"pattern": _BLE_UID.pattern}}},
            ]
        }
    )

    kind: BadgeKind
    uid: str = Field(description="NFC: hex, stored upper-case; BLE: `ble:<id>`")

    @model_validator(mode="after")
    def _uid_matches_kind(self) -> BadgeBase:
        if self.kind == "nfc":
            self.uid = self.uid.strip(" \t").upper()
            if not _NFC_UID.match(self.uid):
                raise ValueError("an NFC uid is 8 to 20 hex digits")
        elif not _BLE_UID.match(self.uid):
            raise ValueError("a BLE uid looks like `ble:<id>`")
        return self


class BadgeCreate(BadgeBase):
    person_id: str


class BadgeReplace(BadgeBase):
    """The new badge; the old one is marked `replaced`."""


class BadgePublic(BadgeBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: str
    status: BadgeStatus
    issued_at: datetime
    revoked_at: datetime | None = None


class BadgeReplacementPublic(BaseModel):
    old: BadgePublic
    new: BadgePublic


class AllowlistEntry(BaseModel):
    uid: str
    kind: BadgeKind
    person_id: str


class AllowlistPublic(BaseModel):
    node: str
    generated_at: datetime
    badges: list[AllowlistEntry]
