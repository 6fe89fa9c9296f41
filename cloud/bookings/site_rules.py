"""The rules that govern a desk, in one place: the site's and the booking rules.

* At tap time (check-in, away, auto-release): the site's time zone, check-in
  grace and away limit (`SiteRules`).
* When booking: the longest booking, how many days ahead bookings open, one
  desk per person per slot (`Rules`); the desk's mode (reservable, drop-in,
  assigned, unavailable), a zone reserved for an agency, and a guest's pass
  window (`check_desk_and_person`, `check_times`).
* When claiming a desk on the spot (QR check-in): which modes take walk-ups
  (`check_walk_up`).

Desks reach a site through floor -> building -> site; a desk ingestion created
before any layout named it has no site and gets the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.raw import PgStatement, driver_in_transaction
from cloud.db.tables import BUILDINGS, DESKS, FLOORS, PEOPLE, SITES, ZONES
from cloud.errors import Conflict, Forbidden, Invalid, NotFound
from ruang.site_defaults import DEFAULT_TIMEZONE


@dataclass(frozen=True)
class SiteRules:
    timezone: str = DEFAULT_TIMEZONE
    checkin_grace_min: int = 15
    away_release_min: int = 30

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


DESK_SITE = select(
    DESKS.c.id,
    DESKS.c.node_id,
    SITES.c.timezone,
    SITES.c.checkin_grace_min,
    SITES.c.away_release_min,
).select_from(
    DESKS.outerjoin(FLOORS, FLOORS.c.id == DESKS.c.floor_id)
    .outerjoin(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id)
    .outerjoin(SITES, SITES.c.id == BUILDINGS.c.site_id)
)


def rules_of(row: Any) -> SiteRules:
    """The rules of a row with DESK_SITE's site columns (defaults when the desk has no site)."""
    if row.timezone is None:
        return SiteRules()
    return SiteRules(row.timezone, int(row.checkin_grace_min), int(row.away_release_min))


async def desk_rules(conn: AsyncConnection, desk: str) -> SiteRules:
    row = (await conn.execute(DESK_SITE.where(DESKS.c.id == desk))).first()
    return SiteRules() if row is None else rules_of(row)


def end_of_local_day(at: datetime, tz: ZoneInfo) -> datetime:
    """The next local midnight after `at`, as an aware datetime."""
    local = at.astimezone(tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz)
    return midnight


# --- booking rules (booking ahead, QR check-in) ---------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Desk modes a person may claim on the spot (QR check-in) without a booking.
WALK_UP_MODES = ("drop_in", "reservable")


@dataclass(frozen=True)
class Rules:
    """The booking limits in force for a desk (its site's, or the defaults)."""

    timezone: str = DEFAULT_TIMEZONE
    max_booking_hours: int = 10
    max_days_ahead: int = 14
    one_desk_per_person_per_slot: bool = True
    checkin_grace_min: int = 15


DESK_CONTEXT = select(
    DESKS.c.id,
    DESKS.c.mode,
    DESKS.c.assigned_person_id,
    ZONES.c.reserved_for_agency,
    SITES.c.timezone,
    SITES.c.max_booking_hours,
    SITES.c.max_days_ahead,
    SITES.c.one_desk_per_person_per_slot,
    SITES.c.checkin_grace_min,
).select_from(
    DESKS.outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id)
    .outerjoin(FLOORS, FLOORS.c.id == DESKS.c.floor_id)
    .outerjoin(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id)
    .outerjoin(SITES, SITES.c.id == BUILDINGS.c.site_id)
)


@dataclass(frozen=True)
class DeskContext:
    desk: Any  # Row of DESK_CONTEXT
    person: Any  # the person's columns the rules read (_PERSON_COLUMNS)
    rules: Rules


# The desk's context and the person in one statement (one round trip instead of two
# on every booking): the person's columns the rules read ride along as
# person__<name>, NULL when there is no such person (no name, NIP or e-mail loaded).
_PERSON_ID: BindParameter[str] = bindparam("context_person_id")
_PERSON_COLUMNS = ("id", "kind", "agency", "valid_from", "valid_until")
DESK_AND_PERSON = DESK_CONTEXT.add_columns(
    *(PEOPLE.c[name].label(f"person__{name}") for name in _PERSON_COLUMNS)
).outerjoin(PEOPLE, PEOPLE.c.id == _PERSON_ID)


def _rules_of_desk(desk: Any) -> Rules:
    if desk.timezone is None:
        return Rules()
    return Rules(
        desk.timezone,
        desk.max_booking_hours,
        desk.max_days_ahead,
        desk.one_desk_per_person_per_slot,
        desk.checkin_grace_min,
    )


async def desk_context(conn: AsyncConnection, desk_id: str, person_id: str) -> DeskContext:
    row = (
        await conn.execute(
            DESK_AND_PERSON.where(DESKS.c.id == desk_id), {"context_person_id": person_id}
        )
    ).first()
    if row is None:
        raise NotFound(f"desk {desk_id!r} is unknown", title="Desk not found")
    if row._mapping["person__id"] is None:
        raise NotFound(f"person {person_id!r} is unknown", title="Person not found")
    person = SimpleNamespace(**{n: row._mapping[f"person__{n}"] for n in _PERSON_COLUMNS})
    return DeskContext(row, person, _rules_of_desk(row))


# A batch's desks and people: two statements however many bookings (the booking
# store's batches, cloud/bookings/store.py). PostgreSQL gets the ids as one array
# (`= ANY`), so the text is the same for every batch and is prepared once per
# connection; an expanded IN list is a new text, parsed and planned again, for
# every batch size. SQLite has no arrays and no server-side plans to lose.
_DESKS_IN = {
    "sqlite": DESK_CONTEXT.where(DESKS.c.id.in_(bindparam("desk_ids", expanding=True))),
    "postgresql": DESK_CONTEXT.where(
        DESKS.c.id == any_(bindparam("desk_ids", type_=ARRAY(String)))
    ),
}
_PERSON_SELECT = select(*(PEOPLE.c[name] for name in _PERSON_COLUMNS))
_PEOPLE_IN = {
    "sqlite": _PERSON_SELECT.where(PEOPLE.c.id.in_(bindparam("person_ids", expanding=True))),
    "postgresql": _PERSON_SELECT.where(
        PEOPLE.c.id == any_(bindparam("person_ids", type_=ARRAY(String)))
    ),
}

_DESKS_IN_PG = PgStatement(_DESKS_IN["postgresql"])
_PEOPLE_IN_PG = PgStatement(_PEOPLE_IN["postgresql"])


async def desk_contexts(
    conn: AsyncConnection, pairs: list[tuple[str, str]]
) -> list[DeskContext | NotFound]:
    """`desk_context` for many (desk, person) pairs: each its context, or its 404."""
    desk_ids = {"desk_ids": sorted({d for d, _ in pairs})}
    person_ids = {"person_ids": sorted({p for _, p in pairs})}
    driver = await driver_in_transaction(conn)
    if driver is not None:  # the booking writer's batch (cloud/db/raw.py)
        desk_rows: Any = await _DESKS_IN_PG.fetch(driver, desk_ids)
        person_rows: Any = await _PEOPLE_IN_PG.fetch(driver, person_ids)
    else:
        dialect = conn.dialect.name
        desk_rows = await conn.execute(_DESKS_IN[dialect], desk_ids)
        person_rows = await conn.execute(_PEOPLE_IN[dialect], person_ids)
    desks = {row.id: row for row in desk_rows}
    people = {row.id: SimpleNamespace(**row._mapping) for row in person_rows}
    out: list[DeskContext | NotFound] = []
    for desk_id, person_id in pairs:
        desk, person = desks.get(desk_id), people.get(person_id)
        if desk is None:
            out.append(NotFound(f"desk {desk_id!r} is unknown", title="Desk not found"))
        elif person is None:
            out.append(NotFound(f"person {person_id!r} is unknown", title="Person not found"))
        else:
            out.append(DeskContext(desk, person, _rules_of_desk(desk)))
    return out


def check_desk_and_person(ctx: DeskContext) -> None:
    desk, person = ctx.desk, ctx.person
    if desk.mode == "unavailable":
        raise Conflict(f"desk {desk.id} is out of service", title="Desk unavailable")
    if desk.mode == "drop_in":
        raise Conflict(
            f"desk {desk.id} is first come, first served: check in at the "
            "desk instead of booking ahead",
            title="Drop-in desk",
        )
    _check_assigned_and_agency(desk, person)


def check_walk_up(desk: Any, person: Any) -> None:
    """Whether `person` may claim `desk` (a row of desk_context) without a booking."""
    if desk.mode != "assigned" and desk.mode not in WALK_UP_MODES:
        raise Conflict(f"desk {desk.id} is out of service", title="Desk unavailable")
    _check_assigned_and_agency(desk, person)


def _check_assigned_and_agency(desk: Any, person: Any) -> None:
    # Shared by booking ahead and walking up: an assigned desk is its holder's
    # alone, and a zone reserved for an agency takes only that agency's people.
    if desk.mode == "assigned" and desk.assigned_person_id != person.id:
        raise Forbidden(
            f"desk {desk.id} is assigned to someone else", title="Desk assigned to someone else"
        )
    agency = desk.reserved_for_agency
    if agency is not None and person.agency != agency:
        raise Forbidden(
            f"desk {desk.id} is in a zone reserved for {agency}",
            title="Zone reserved for another agency",
        )


def check_times(
    rules: Rules,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    *,
    person: Any = None,
    check_start: bool = True,
) -> None:
    if ends_at - starts_at > timedelta(hours=rules.max_booking_hours):
        raise Invalid(
            f"a booking may last at most {rules.max_booking_hours} h", title="Booking too long"
        )
    if check_start and starts_at < now - timedelta(minutes=rules.checkin_grace_min):
        raise Invalid("the booking starts in the past", title="Booking in the past")
    if ends_at <= now:
        raise Invalid("the booking ends in the past", title="Booking in the past")
    tz = ZoneInfo(rules.timezone)
    horizon = now.astimezone(tz).date() + timedelta(days=rules.max_days_ahead)
    if starts_at.astimezone(tz).date() > horizon:
        raise Invalid(
            f"bookings open {rules.max_days_ahead} days ahead (until {horizon.isoformat()})",
            title="Too far ahead",
        )
    if person is not None and person.kind == "guest":
        if (person.valid_from and starts_at < person.valid_from) or (
            person.valid_until and ends_at > person.valid_until
        ):
            raise Forbidden(
                "the guest pass does not cover that time", title="Guest pass not valid then"
            )
