"""Resolves access groups, grants, weekly schedules and holidays into a node's door rights.

For one node and one period (the snapshot's `issued_at` .. `valid_until`) this
answers: which of the doors the node controls the cloud manages (its desired
config lists them, and they are in `access_doors`), which badges may open
them, and the absolute windows `[start, end)` in which each may, computed in
the site's time zone with its holidays taken out. The node then needs no
calendar and no time-zone data to decide (edge/devices/door_rights.py).

Who is in a group (rule):
- agency / role: people whose `agency` / `role` is the group's value;
- zone / floor: people with a desk assigned there, people with an active
  booking there overlapping the period, and, for a zone reserved for an
  agency, that agency's people;
- people: the listed person ids.
Only active badges count; a guest's badge carries the guest's pass window
(`valid_from`/`valid_until`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.access.schemas import ScheduleWindow, minutes
from cloud.db.models import ACTIVE_BOOKING_STATUSES
from cloud.db.tables import (
    ACCESS_DOORS,
    ACCESS_GRANTS,
    ACCESS_GROUPS,
    ACCESS_HOLIDAYS,
    BADGES,
    BOOKINGS,
    DESKS,
    NODE_CONFIGS,
    PEOPLE,
    SITES,
    ZONES,
)
from ruang import contract

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Window = tuple[float, float]


@dataclass
class BadgeRights:
    """One badge's holder, pass window and windows per door."""

    person: str
    valid_from: float | None = None
    valid_until: float | None = None
    doors: dict[str, list[Window]] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeDoorRights:
    """What a node's snapshot carries about doors."""

    site_timezone: str | None
    doors: tuple[contract.SnapshotDoor, ...]
    badges: dict[str, BadgeRights]


def badge_ref(uid: str, kind: str) -> str:
    """The edge names BLE badges `ble:<id>` and NFC cards by upper-case hex UID."""
    if kind == "ble":
        return uid if uid.startswith("ble:") else f"ble:{uid}"
    return uid.upper()


def configured_doors(config: Any) -> set[str]:
    """The door ids a desired node config lists (the same binding cloud/ingest/bindings.py uses)."""
    items = config.get("doors") if isinstance(config, dict) else None
    if not isinstance(items, list):
        return set()
    return {d["id"] for d in items if isinstance(d, dict) and isinstance(d.get("id"), str)}


async def door_nodes(conn: AsyncConnection) -> dict[str, set[str]]:
    """{node: door ids its desired config lists that the cloud manages}."""
    managed = set(await conn.scalars(select(ACCESS_DOORS.c.id)))
    out: dict[str, set[str]] = {}
    for door, node in await conn.execute(
        select(ACCESS_DOORS.c.id, ACCESS_DOORS.c.node_id).where(ACCESS_DOORS.c.node_id.is_not(None))
    ):
        out.setdefault(node, set()).add(door)
    for node, config in await conn.execute(select(NODE_CONFIGS.c.node_id, NODE_CONFIGS.c.config)):
        doors = configured_doors(config) & managed
        if doors:
            out.setdefault(node, set()).update(doors)
    return out


async def door_node_sites(conn: AsyncConnection) -> dict[str, set[str]]:
    """{node: sites of the managed doors it controls} (door-only nodes have no other place)."""
    nodes = await door_nodes(conn)
    door_site = dict(
        (await conn.execute(select(ACCESS_DOORS.c.id, ACCESS_DOORS.c.site_id))).tuples().all()
    )
    return {node: {door_site[d] for d in doors} for node, doors in nodes.items()}


def windows_of(
    schedule: Sequence[ScheduleWindow],
    tz: ZoneInfo,
    holidays: set[date],
    start: datetime,
    end: datetime,
) -> list[Window]:
    """The schedule's windows inside [start, end), as Unix seconds, holidays left out.

    A window belongs to the local day it starts on: on a holiday none starts,
    but an overnight window of the day before runs on into it.
    """
    out: list[Window] = []
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    lo, hi = start.timestamp(), end.timestamp()
    day = first
    while day <= last:
        if day not in holidays:
            weekday = _WEEKDAYS[day.weekday()]
            for w in schedule:
                if weekday not in w.days:
                    continue
                s_min, e_min = minutes(w.start), minutes(w.end)
                s = datetime.combine(day, time(), tz) + timedelta(minutes=s_min)
                e_day = day if e_min > s_min else day + timedelta(days=1)
                e = datetime.combine(e_day, time(), tz) + timedelta(minutes=e_min % (24 * 60))
                if e_min == 24 * 60:
                    e = datetime.combine(day + timedelta(days=1), time(), tz)
                ws, we = max(lo, s.timestamp()), min(hi, e.timestamp())
                if ws < we:
                    out.append((ws, we))
        day += timedelta(days=1)
    return merge(out)


def merge(windows: Iterable[Window]) -> list[Window]:
    """Sorted, with overlapping or touching windows joined."""
    out: list[Window] = []
    for s, e in sorted(windows):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


async def _members(conn: AsyncConnection, group: Any, start: datetime, end: datetime) -> set[str]:
    rule, value = group.rule, group.value
    if rule == "people":
        return set(group.members or [])
    if rule in ("agency", "role"):
        column = PEOPLE.c.agency if rule == "agency" else PEOPLE.c.role
        return set(await conn.scalars(select(PEOPLE.c.id).where(column == value)))
    desk_column = DESKS.c.zone_id if rule == "zone" else DESKS.c.floor_id
    desks = select(DESKS.c.id).where(desk_column == value)
    people: set[str] = set(
        await conn.scalars(
            select(DESKS.c.assigned_person_id).where(
                desk_column == value, DESKS.c.assigned_person_id.is_not(None)
            )
        )
    )
    people |= set(
        await conn.scalars(
            select(BOOKINGS.c.person_id).where(
                BOOKINGS.c.desk_id.in_(desks),
                BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES),
                BOOKINGS.c.ends_at > start,
                BOOKINGS.c.starts_at < end,
            )
        )
    )
    if rule == "zone":
        agency = await conn.scalar(select(ZONES.c.reserved_for_agency).where(ZONES.c.id == value))
        if agency:
            people |= set(await conn.scalars(select(PEOPLE.c.id).where(PEOPLE.c.agency == agency)))
    return people


async def node_door_rights(
    conn: AsyncConnection, doors: set[str], start: datetime, end: datetime
) -> NodeDoorRights:
    """The door rights of the doors `doors` (one node's) for [start, end)."""
    door_rows = (
        await conn.execute(
            select(ACCESS_DOORS, SITES.c.timezone)
            .join(SITES, SITES.c.id == ACCESS_DOORS.c.site_id)
            .where(ACCESS_DOORS.c.id.in_(doors))
            .order_by(ACCESS_DOORS.c.id)
        )
    ).all()
    snapshot_doors = tuple(
        contract.SnapshotDoor(
            door=d.id, zone_from=d.zone_from, zone_to=d.zone_to,
            anti_passback=d.anti_passback, anti_passback_reset_s=d.anti_passback_reset_s,
        )
        for d in door_rows
    )  # fmt: skip
    door_site = {d.id: (d.site_id, d.timezone) for d in door_rows}
    grants = (
        await conn.execute(
            select(ACCESS_GRANTS, ACCESS_GROUPS)
            .join(ACCESS_GROUPS, ACCESS_GROUPS.c.id == ACCESS_GRANTS.c.group_id)
            .where(ACCESS_GRANTS.c.door_id.in_(door_site))
            .order_by(ACCESS_GRANTS.c.id)
        )
    ).all()
    sites = {site for site, _ in door_site.values()}
    holidays: dict[str, set[date]] = {s: set() for s in sites}
    for site, day in await conn.execute(
        select(ACCESS_HOLIDAYS.c.site_id, ACCESS_HOLIDAYS.c.day).where(
            ACCESS_HOLIDAYS.c.site_id.in_(sites)
        )
    ):
        holidays[site].add(day)
    # Per person, per door: the windows of every grant of every group they are in.
    person_doors: dict[str, dict[str, list[Window]]] = {}
    members_of: dict[str, set[str]] = {}
    for g in grants:
        site, tz = door_site[g.door_id]
        if g.group_id not in members_of:
            members_of[g.group_id] = await _members(conn, g, start, end)
        schedule = [ScheduleWindow.model_validate(w) for w in g.schedule]
        days_off = set() if g.open_on_holidays else holidays[site]
        windows = windows_of(schedule, ZoneInfo(tz), days_off, start, end)
        # A grant with no window in the period still ships (empty): the node then says
        # "outside schedule" rather than "unknown badge".
        for person in members_of[g.group_id]:
            person_doors.setdefault(person, {}).setdefault(g.door_id, []).extend(windows)
    badges: dict[str, BadgeRights] = {}
    if person_doors:
        rows = await conn.execute(
            select(
                BADGES.c.uid, BADGES.c.kind, BADGES.c.person_id,
                PEOPLE.c.valid_from, PEOPLE.c.valid_until,
            )
            .join(PEOPLE, PEOPLE.c.id == BADGES.c.person_id)
            .where(
                BADGES.c.status == "active",
                BADGES.c.person_id.in_(person_doors),
                or_(PEOPLE.c.valid_until.is_(None), PEOPLE.c.valid_until > start),
            )
            .order_by(BADGES.c.uid)
        )  # fmt: skip
        for uid, kind, person, valid_from, valid_until in rows:
            badges[badge_ref(uid, kind)] = BadgeRights(
                person=person,
                valid_from=valid_from.timestamp() if valid_from else None,
                valid_until=valid_until.timestamp() if valid_until else None,
                doors={d: merge(w) for d, w in sorted(person_doors[person].items())},
            )
    timezone = door_rows[0].timezone if door_rows else None
    return NodeDoorRights(site_timezone=timezone, doors=snapshot_doors, badges=badges)
