"""Finding a person's rows: by person-id columns, by their badges, inside JSON documents.

Shared by the export (cloud/privacy/export.py) and the erasure (cloud/privacy/erase.py),
so both reach the same rows. JSON columns are matched as text (`"person_id": "p-1"`):
SQLAlchemy writes JSON with `json.dumps` separators on both backends (PostgreSQL's
`json` type keeps the text as written), and the candidates are checked again in Python.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, String, Table, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import BADGES, PEOPLE

# Columns holding a person id, table by table: how the person's rows are found.
PERSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "people": ("id",),
    "badges": ("person_id",),
    "desks": ("assigned_person_id",),
    "bookings": ("person_id",),
    "booking_series": ("person_id",),
    "room_bookings": ("person_id",),
    "calendar_tokens": ("person_id",),
    "notifications": ("person_id",),
    "notification_preferences": ("person_id",),
    "transport_reservations": ("person_id",),
    "transport_car_bookings": ("person_id", "decided_by"),
    "transport_boardings": ("person_id",),
    "transport_car_uses": ("person_id",),
    "access_log": ("person_id",),
    "visits": ("host_person_id",),
    "admin_audit": ("actor",),
    "access_changes": ("actor",),
    "enrolment_tokens": ("created_by",),
    "privacy_reads": ("actor", "subject"),
    "person_group_members": ("person_id",),
    "person_identities": ("person_id",),
}


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def json_mentions(column: Any, *texts: str) -> ColumnElement[bool]:
    """Candidates whose JSON text contains one of `texts` as a JSON string."""
    return or_(
        *(cast(column, String).like(f"%{escape_like(json.dumps(t))}%", escape="\\") for t in texts)
    )


def mentions(value: Any, texts: Iterable[str]) -> bool:
    """Whether a decoded JSON value holds one of `texts` as a string (exactly)."""
    wanted = set(texts)
    if isinstance(value, str):
        return value in wanted
    if isinstance(value, dict):
        return any(mentions(v, wanted) or k in wanted for k, v in value.items())
    if isinstance(value, list):
        return any(mentions(v, wanted) for v in value)
    return False


async def person_row(conn: AsyncConnection, person_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(PEOPLE).where(PEOPLE.c.id == person_id))).first()
    return dict(row._mapping) if row is not None else None


async def badge_uids(conn: AsyncConnection, person_id: str) -> list[str]:
    """Every badge the person ever held (active, revoked, lost, replaced)."""
    rows = await conn.execute(select(BADGES.c.uid).where(BADGES.c.person_id == person_id))
    return sorted({uid for (uid,) in rows})


def device_ids(uids: Iterable[str]) -> list[str]:
    """The fleet's device ids of BLE badges (`ble:<id>` badges report as `<id>`)."""
    out: set[str] = set()
    for uid in uids:
        out.add(uid)
        if uid.startswith("ble:"):
            out.add(uid[len("ble:") :])
    return sorted(out)


def by_person(table: Table, person_id: str) -> ColumnElement[bool]:
    return or_(*(table.c[name] == person_id for name in PERSON_COLUMNS[table.name]))
