"""HTTP API schemas of ingestion: its counters."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class IngestStatsPublic(BaseModel):
    connected: bool
    connects: int
    received: int
    applied: int
    duplicates: int
    stale_deaths: int
    rejected: dict[str, int] = Field(description="dropped messages by reason category")
    write_errors: int
    dead_lettered: int = Field(
        description="messages parked in the dead-letter table (poison or clock skew)"
    )
    telemetry_dropped: int
    transport: dict[str, int] = Field(
        default_factory=dict,
        description="boarding/poolcar events applied, by outcome (e.g. boarding.unknown_vehicle)",
    )
    nodes_timed_out: int
    last_error: str | None
    last_error_at: datetime | None
    telemetry_sink: str
    telemetry_written: int
    telemetry_failed: int
    telemetry_pending: int


class DeadLetterPublic(BaseModel):
    id: int
    message_id: str
    node: str | None
    topic: str
    reason: str = Field(description="why it was parked, or why its last replay failed")
    attempts: int = Field(description="times it was received or replayed and failed")
    first_seen: datetime
    last_seen: datetime


class DeadLetterDetail(DeadLetterPublic):
    payload_b64: str = Field(description="the raw MQTT payload, base64")


class DeadLetterPage(BaseModel):
    total: int
    items: list[DeadLetterPublic]


class ReplayResult(BaseModel):
    replayed: bool = Field(description="applied (and the dead letter removed)")
    duplicate: bool = Field(description="it had already been applied meanwhile")
    reason: str | None = Field(description="why it was not applied")
