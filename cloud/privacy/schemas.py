"""Schemas of the personal-data export, the erasure result and the access audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class PersonExport(BaseModel):
    """Everything Ruang's database holds about one person, table by table (docs/privacy.md)."""

    format: str = Field(default="ruang-person-export/1", description="version of this layout")
    person_id: str
    generated_at: datetime
    tables: dict[str, list[dict[str, Any]]] = Field(
        description="table name -> the rows about the person, as stored (secrets left out)"
    )
    not_exported: dict[str, str] = Field(
        description="tables of the data map that hold nothing about the person, and why"
    )


class ErasurePublic(BaseModel):
    """What an erasure did: the pseudonym the person's history now carries, and counts."""

    pseudonym: str = Field(description="the random id that replaced the person id in history")
    badges_removed: int
    rows_anonymised: dict[str, int] = Field(description="table -> rows changed or deleted")


class PersonalReadPublic(BaseModel):
    """One read of another person's personal data."""

    id: int
    at: datetime
    actor: str = Field(description="person id of the reader (the token subject)")
    role: str = Field(description="the role that let the reader read it")
    what: str = Field(description="what was read, e.g. person.private, access_log")
    subject: str | None = Field(description="the person read about, when the read named one")
    site_id: str | None
    records: int = Field(description="how many records the answer held")


class PersonalReadPage(BaseModel):
    """Newest first; pass `next_before` as `before` for the next page (None: no more)."""

    entries: list[PersonalReadPublic]
    next_before: int | None
