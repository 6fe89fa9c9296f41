"""HTTP API schemas of webhook subscriptions and their deliveries."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from cloud.integrations.events import KINDS, EventKind


class WebhookCreate(BaseModel):
    url: str = Field(
        max_length=2048,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+([/?#]\S*)?$",
        description="http(s) endpoint receiving the POSTs",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="HMAC key; omitted = generated and returned once",
    )
    kinds: list[EventKind] | None = Field(
        default=None,
        description="event kinds wanted; omitted = all (docs/webhooks.md lists them, "
        "each with its JSON Schema)",
    )

    @field_validator("kinds", mode="before")
    @classmethod
    def _known_kinds(cls, value: object) -> object:
        # Before the Literal check, so an unknown kind is answered with the whole list.
        if isinstance(value, list):
            unknown = [k for k in value if not isinstance(k, str) or k not in KINDS]
            if unknown:
                raise ValueError(
                    f"unknown event kind(s) {', '.join(map(repr, unknown))}; "
                    f"known kinds: {', '.join(KINDS)}"
                )
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("an absolute http:// or https:// URL is required")
        return value


class WebhookPublic(BaseModel):
    id: int
    url: str
    kinds: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str | None = Field(
        description="the generated secret, shown only in this answer; "
        "null when the request supplied one"
    )


class WebhookDeliveryPublic(BaseModel):
    id: int = Field(description="delivery id, sent as X-Ruang-Delivery")
    event_id: int
    kind: str
    attempts: int
    last_status: int | None = Field(description="HTTP status of the last attempt")
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="null once delivered or given up")
    delivered_at: datetime | None
    gave_up: bool
