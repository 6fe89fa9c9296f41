"""Pydantic schemas of the HTTP API (Base = shared fields, Create = input, Public = output)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ruang.contract import LedPatternName


class DeskBase(BaseModel):
    node: str = Field(description="edge node serving the desk")
    state: Literal["free", "occupied"]
    occupant_badge: str | None = None
    checked_in_at: datetime | None = None
    present: bool | None = Field(default=None, description="presence sensor; null = never reported")
    presence_changed_at: datetime | None = None
    last_change_at: datetime | None = None
    unit: str | None = None
    unit_online: bool | None = None
    unit_firmware: str | None = None


class DeskPublic(DeskBase):
    model_config = ConfigDict(from_attributes=True)

    id: str


class NodeBase(BaseModel):
    online: bool
    bdseq: int | None = None
    sw_version: str | None = None
    last_seen: datetime | None = None
    last_birth_at: datetime | None = None
    last_death_at: datetime | None = None


class NodePublic(NodeBase):
    id: str
    desks: int = Field(description="number of desks served by the node")


class LedCommandBase(BaseModel):
    r: int = Field(ge=0, le=255)
    g: int = Field(ge=0, le=255)
    b: int = Field(ge=0, le=255)
    pattern: LedPatternName = "solid"
    duration_s: int = Field(default=0, ge=0, le=65535, description="0 = until changed")


class LedCommandCreate(LedCommandBase):
    pass


class LedCommandPublic(LedCommandBase):
    id: str = Field(description="message id of the published command")
    desk: str
    node: str
    topic: str


class IngestStatsPublic(BaseModel):
    connected: bool
    connects: int
    received: int
    applied: int
    duplicates: int
    stale_deaths: int
    rejected: dict[str, int] = Field(description="dropped messages by reason category")
    write_errors: int
    telemetry_dropped: int
    nodes_timed_out: int
    last_error: str | None
    last_error_at: datetime | None
    telemetry_sink: str
    telemetry_written: int
    telemetry_failed: int
    telemetry_pending: int


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    database: bool
    mqtt: bool


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
