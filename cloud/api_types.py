"""Types every part of the HTTP API shares: SQL-safe ints, RFC 3339 times, problems, health."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator

# Integers that reach SQL: SQLite and PostgreSQL both store at most a signed 64-bit
# integer, so a larger id must be refused by validation, not overflow in the driver.
SQL_INT_MAX = 2**63 - 1


def _rfc3339(value: object) -> object:
    """Text must be an RFC 3339 date-time with an offset, as the schema's `date-time` says.

    Without this, pydantic also takes numbers (`from=57` is 57 s after the epoch)
    and offset-less times, which the document does not allow.
    """
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise ValueError("an RFC 3339 date-time with an offset, e.g. 2025-01-31T09:00:00+08:00")
    return value


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# A date-time from a query string or body: RFC 3339 text with an offset, nothing else.
AwareDateTime = Annotated[datetime, BeforeValidator(_rfc3339)]


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
