"""Schemas of the admin audit log and the people-import preview."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from cloud.people.schemas import RowError


class AuditEntryPublic(BaseModel):
    """One admin action: who (person id and roles), what (action on target), when, detail."""

    id: int
    at: datetime
    actor: str = Field(description="the token subject (person id) that acted")
    actor_roles: list[str]
    action: str = Field(description="domain.verb, e.g. badge.revoke")
    target: str = Field(description="kind:id of what was acted on, e.g. badge:12")
    site_id: str | None
    detail: dict[str, Any] = Field(description="what changed; secrets are never recorded")


class AuditPage(BaseModel):
    """Newest first; pass `next_before` as `before` for the next page (None: no more)."""

    items: list[AuditEntryPublic]
    next_before: int | None


class ImportPreview(BaseModel):
    """What a roster import would do, without doing it: every bad row, or the counts."""

    ok: bool
    created: int = 0
    updated: int = 0
    badges_issued: int = 0
    errors: list[RowError] = Field(default_factory=list)


class TokenPublic(BaseModel):
    """An enrolment token as the console lists it: never the token, a hash prefix names it."""

    ref: str = Field(description="the first hex digits of the token's SHA-256")
    node_id: str
    state: str = Field(description="open, used, expired or withdrawn")
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None


class ConfigCheck(BaseModel):
    """A node config as text (JSON or YAML), to be checked before it is pushed."""

    text: str = Field(max_length=100_000)
    format: str = Field(default="json", pattern="^(json|yaml)$")


class ConfigProblem(BaseModel):
    line: int | None = Field(description="1-based line of the text, when known")
    message: str


class ConfigChecked(BaseModel):
    ok: bool
    config: dict[str, Any] | None = Field(description="the parsed config when ok")
    errors: list[ConfigProblem]
