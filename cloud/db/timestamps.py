"""Conversions between the contract's Unix seconds and the SQL columns' aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(ts: float) -> datetime:
    """Unix seconds -> an aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)
