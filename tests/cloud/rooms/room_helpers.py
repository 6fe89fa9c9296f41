"""Shared set-up of the room tests: the sample building's rooms, slots, request bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from cloud.db.tables import NOTIFICATIONS
from tests.cloud.conftest import RunningCloud

# Sample layout (cloud/buildings/sample_layout): two rooms on level 1 with radars.
ROOM_S = "A1-L1-R1"  # 8 seats, screen; zone reserved for no agency
ROOM_L = "A1-L1-R2"  # 12 seats, screen + video_conference


def at(days: int = 1, hour: int = 10, minutes: int = 60) -> tuple[str, str]:
    """A slot `days` from today at `hour` UTC+8, as ISO strings."""
    from zoneinfo import ZoneInfo

    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Makassar"))
    start = local.replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return start.isoformat(), (start + timedelta(minutes=minutes)).isoformat()


def body(room: str, person: str, when: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"room_id": room, "person_id": person, "starts_at": when[0], "ends_at": when[1]} | extra


async def notifications(cloud: RunningCloud, person: str, kind: str) -> list[Any]:
    async with cloud.app.state.engine.connect() as conn:
        rows = await conn.execute(
            select(NOTIFICATIONS).where(
                NOTIFICATIONS.c.person_id == person, NOTIFICATIONS.c.kind == kind
            )
        )
        return list(rows)
