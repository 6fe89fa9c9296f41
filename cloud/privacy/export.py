"""A person's data, everything the database holds about them, as one JSON document.

The right of access and portability (UU PDP Pasal 7 and 13): `GET /api/v1/me/export`.
Every table of the data map (docs/privacy.md) is either in `EXPORTED` (how the
person's rows are found) or in `NOT_EXPORTED` (why it holds nothing about one person);
tests/cloud/privacy/test_export.py fails for a table in neither, so a new personal
table cannot be forgotten here. Secrets never leave: token hashes, pass codes and the
configs of nodes are left out of the rows.

Events (`events`), integration events and dead letters are found by the person's badge
uids and by their id inside the JSON; without an index on those, this reads the whole
table once per export, which is fine for a request a person makes now and then.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.models import Base
from cloud.db.tables import (
    ACCESS_GROUPS,
    DEAD_LETTERS,
    DESKS,
    DEVICE_STATUS,
    EVENTS,
    INTEGRATION_EVENTS,
    NOTIFICATION_DELIVERIES,
    NOTIFICATIONS,
)
from cloud.errors import NotFound
from cloud.privacy import lookup
from cloud.privacy.schemas import PersonExport

# Columns that are never exported, even to the person: credentials and secrets.
SECRET_COLUMNS = {
    "calendar_tokens": {"token_hash"},
    "enrolment_tokens": {"token_hash", "config"},
    "visits": {"pass_code"},
}

NOT_EXPORTED: dict[str, str] = {
    "transport_vehicles": "a vehicle's plate and site; personal only when joined with a "
    "pool-car booking, which is exported",
    "node_configs": "node settings; the BLE badge ids in them are the person's badges, "
    "exported under `badges`",
    "webhook_deliveries": "delivery bookkeeping without payload; the payloads are "
    "`integration_events`, exported",
    "room_presence_changes": "a room radar's sensed presence, no identity",
    "presence_changes": "a desk sensor's presence, no identity",
    "person_groups": "a group's name and the role it grants; the person's memberships "
    "are exported under `person_group_members`",
    "attendance_agencies": "an agency's opt-in to the attendance export, no person; "
    "the attendance rows are computed from `events` and `access_log`, exported",
}

Finder = Callable[[AsyncConnection, str, list[str]], Awaitable[list[dict[str, Any]]]]


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _rows(table: Table, rows: Any) -> list[dict[str, Any]]:
    hidden = SECRET_COLUMNS.get(table.name, set())
    return [{k: _plain(v) for k, v in row._mapping.items() if k not in hidden} for row in rows]


def _by_person_column(name: str) -> Finder:
    async def find(conn: AsyncConnection, person_id: str, uids: list[str]) -> list[dict[str, Any]]:
        table = _table(name)
        stmt = select(table).where(lookup.by_person(table, person_id))
        return _rows(table, await conn.execute(stmt))

    return find


async def _desks(conn: AsyncConnection, person_id: str, uids: list[str]) -> list[dict[str, Any]]:
    cond = DESKS.c.assigned_person_id == person_id
    if uids:
        cond = or_(cond, DESKS.c.occupant_badge.in_(uids))
    c = DESKS.c
    columns = (c.id, c.label, c.assigned_person_id, c.occupant_badge, c.checked_in_at)
    rows = await conn.execute(select(*columns).where(cond))
    return [{k: _plain(v) for k, v in r._mapping.items()} for r in rows]


async def _events(conn: AsyncConnection, person_id: str, uids: list[str]) -> list[dict[str, Any]]:
    cond = lookup.json_mentions(EVENTS.c.payload, person_id)
    if uids:
        cond = or_(EVENTS.c.badge.in_(uids), cond)
    rows = (await conn.execute(select(EVENTS).where(cond).order_by(EVENTS.c.id))).all()
    keep = [r for r in rows if r.badge in uids or lookup.mentions(r.payload, [person_id, *uids])]
    return _rows(EVENTS, keep)


async def _integration_events(
    conn: AsyncConnection, person_id: str, uids: list[str]
) -> list[dict[str, Any]]:
    t = INTEGRATION_EVENTS
    rows = (await conn.execute(select(t).where(lookup.json_mentions(t.c.data, person_id)))).all()
    return _rows(t, [r for r in rows if lookup.mentions(r.data, [person_id])])


async def _notification_deliveries(
    conn: AsyncConnection, person_id: str, uids: list[str]
) -> list[dict[str, Any]]:
    mine = select(NOTIFICATIONS.c.id).where(NOTIFICATIONS.c.person_id == person_id)
    t = NOTIFICATION_DELIVERIES
    return _rows(t, await conn.execute(select(t).where(t.c.notification_id.in_(mine))))


async def _access_groups(
    conn: AsyncConnection, person_id: str, uids: list[str]
) -> list[dict[str, Any]]:
    t = ACCESS_GROUPS
    rows = (await conn.execute(select(t).where(lookup.json_mentions(t.c.members, person_id)))).all()
    return _rows(t, [r for r in rows if person_id in (r.members or [])])


async def _dead_letters(
    conn: AsyncConnection, person_id: str, uids: list[str]
) -> list[dict[str, Any]]:
    # Raw payloads (bytes): matched as JSON strings in the text, in Python.
    needles = [json.dumps(x).encode() for x in (person_id, *uids)]
    rows = (await conn.execute(select(DEAD_LETTERS))).all()
    return _rows(DEAD_LETTERS, [r for r in rows if any(n in r.payload for n in needles)])


async def _device_status(
    conn: AsyncConnection, person_id: str, uids: list[str]
) -> list[dict[str, Any]]:
    if not uids:
        return []
    t = DEVICE_STATUS
    found = await conn.execute(select(t).where(t.c.device.in_(lookup.device_ids(uids))))
    return _rows(t, found)


async def _car_positions(
    conn: AsyncConnection, person_id: str, uids: list[str]
) -> list[dict[str, Any]]:
    bookings, t = _table("transport_car_bookings"), _table("transport_car_positions")
    mine = select(bookings.c.id).where(bookings.c.person_id == person_id)
    return _rows(t, await conn.execute(select(t).where(t.c.booking_id.in_(mine))))


EXPORTED: dict[str, Finder] = {
    **{name: _by_person_column(name) for name in lookup.PERSON_COLUMNS if name != "desks"},
    "desks": _desks,
    "events": _events,
    "integration_events": _integration_events,
    "notification_deliveries": _notification_deliveries,
    "access_groups": _access_groups,
    "dead_letters": _dead_letters,
    "device_status": _device_status,
    "transport_car_positions": _car_positions,
}


async def export_person(conn: AsyncConnection, person_id: str) -> PersonExport:
    """Every row about `person_id`, by table; NotFound when the person is unknown."""
    if await lookup.person_row(conn, person_id) is None:
        raise NotFound(f"person {person_id!r} is unknown", title="Person not found")
    uids = await lookup.badge_uids(conn, person_id)
    tables = {name: await find(conn, person_id, uids) for name, find in sorted(EXPORTED.items())}
    return PersonExport(
        person_id=person_id,
        generated_at=datetime.now(UTC),
        tables=tables,
        not_exported=NOT_EXPORTED,
    )
