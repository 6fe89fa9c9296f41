"""People and badges: CSV import (all or nothing), badge lifecycle, and a node's badge allowlist.

CSV columns (header row required, order free, UTF-8, `,` separated):
  id, kind (asn|guest), name, role (asn|guest|facility_manager|technician|admin)  - required
  agency, nip (18 digits), email, host_person_id, valid_from, valid_until (ISO 8601
  with offset), pass_number, site_id (home site)                                - optional
Rows upsert by id. One bad row refuses the whole file (422 with every bad line),
so a half-imported roster never exists; a fixed file can simply be re-sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.db.tables import BADGES, BOOKINGS, DESKS, PEOPLE
from cloud.errors import Conflict, DomainError, Invalid, NotFound, TooLarge
from cloud.people.schemas import (
    AllowlistEntry,
    AllowlistPublic,
    BadgeBase,
    BadgeCreate,
    BadgePublic,
    BadgeReplacementPublic,
    PeopleImportPublic,
    PersonCreate,
    PersonPrivate,
    PersonPublic,
    RowError,
)

CSV_REQUIRED = ("id", "kind", "name", "role")
CSV_COLUMNS = (
    *CSV_REQUIRED,
    "agency",
    "nip",
    "email",
    "host_person_id",
    "valid_from",
    "valid_until",
    "pass_number",
    "site_id",
    "badge_uid",
    "badge_kind",
)
MAX_IMPORT_BYTES = 5_000_000
# Called with the connection and the result inside a write's transaction, before it commits
# (the admin audit log is written this way: cloud/admin/audit.py).
Hook = Callable[[AsyncConnection, Any], Awaitable[None]]
ALLOWLIST_HORIZON = timedelta(hours=24)


def _import_error(errors: list[RowError]) -> DomainError:
    return Invalid(
        f"{len(errors)} problem(s); nothing was imported",
        title="People import refused",
        errors=[e.model_dump() for e in errors],
    )


def parse_people_csv(data: bytes, known_ids: set[str]) -> list[PersonCreate]:
    """Every row as a PersonCreate, or a 422 DomainError naming each bad line."""
    return parse_roster_csv(data, known_ids)[0]


RosterBadge = tuple[int, str, BadgeBase]  # (line, person id, badge)


def parse_roster_csv(
    data: bytes, known_ids: set[str]
) -> tuple[list[PersonCreate], list[RosterBadge]]:
    """People, and the badges the roster hands them (optional `badge_uid`/`badge_kind`)."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _import_error([RowError(line=1, reason=f"not UTF-8 text: {exc}")]) from None
    reader = csv.DictReader(io.StringIO(content, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        reasons = ([f"missing column(s): {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s): {', '.join(unknown)}"] if unknown else []
        )
        raise _import_error([RowError(line=1, reason="; ".join(reasons))])
    people: list[PersonCreate] = []
    badges: list[RosterBadge] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    line = 1
    for record in reader:
        line = reader.line_num  # the line the record ends on; rows are one line normally
        if None in record:
            errors.append(RowError(line=line, reason="more fields than columns"))
            continue
        values = {k: v.strip() for k, v in record.items() if v is not None and v.strip() != ""}
        badge_uid, badge_kind = values.pop("badge_uid", None), values.pop("badge_kind", None)
        badge: BadgeBase | None = None
        if badge_uid is not None:
            kind = badge_kind or ("ble" if badge_uid.startswith("ble:") else "nfc")
            try:
                badge = BadgeBase.model_validate({"kind": kind, "uid": badge_uid})
            except ValidationError as exc:
                errors.append(RowError(line=line, reason=f"badge: {exc.errors()[0]['msg']}"))
                continue
        try:
            person = PersonCreate.model_validate(values)
        except ValidationError as exc:
            reasons = [f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors()]
            errors.append(RowError(line=line, reason="; ".join(reasons)))
            continue
        if person.id in first_line:
            errors.append(
                RowError(line=line, reason=f"id {person.id!r} repeats line {first_line[person.id]}")
            )
            continue
        first_line[person.id] = line
        people.append(person)
        if badge is not None:
            badges.append((line, person.id, badge))
    for person in people:
        host = person.host_person_id
        if host is not None and host not in first_line and host not in known_ids:
            errors.append(
                RowError(
                    line=first_line[person.id],
                    reason=f"host_person_id {host!r} is not a known person",
                )
            )
    if not people and not errors:
        errors.append(RowError(line=line, reason="no rows after the header"))
    if errors:
        raise _import_error(sorted(errors, key=lambda e: e.line))
    return people, badges


async def import_people(
    engine: AsyncEngine,
    data: bytes,
    *,
    sites: frozenset[str] | None = None,
    dry_run: bool = False,
    hook: Hook | None = None,
) -> PeopleImportPublic:
    """Upserts the roster; with `sites` (a facility manager's), every row, and every
    person it would overwrite, must have its home site among them.

    `dry_run` does all of it, every check of the database included, then rolls back:
    the preview finds exactly the errors the real import would."""
    if len(data) > MAX_IMPORT_BYTES:
        raise TooLarge(f"at most {MAX_IMPORT_BYTES} bytes per import")
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            result = await _import(conn, data, sites)
            if hook is not None and not dry_run:
                await hook(conn, result)
        except BaseException:
            await transaction.rollback()
            raise
        if dry_run:
            await transaction.rollback()
        else:
            await transaction.commit()
    return result


async def _import(
    conn: AsyncConnection, data: bytes, sites: frozenset[str] | None
) -> PeopleImportPublic:
    # Hosts are checked against the whole roster; a tiny table next to desks.
    home = {r.id: r.site_id for r in await conn.execute(select(PEOPLE.c.id, PEOPLE.c.site_id))}
    known = set(home)
    people, badges = parse_roster_csv(data, known)
    if sites is not None:
        _check_sites(people, home, sites)
    rows = [p.model_dump() for p in people]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(PEOPLE)
    # Guests after their hosts, so the foreign key holds at every row.
    rows.sort(key=lambda r: r["host_person_id"] is not None)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[PEOPLE.c.id],
            set_={c: stmt.excluded[c] for c in rows[0] if c != "id"},
        ),
        rows,
    )
    issued = await _roster_badges(conn, badges)
    updated = sum(1 for p in people if p.id in known)
    return PeopleImportPublic(created=len(people) - updated, updated=updated, badges_issued=issued)


def _check_sites(
    people: list[PersonCreate], home: dict[str, str | None], sites: frozenset[str]
) -> None:
    # Someone else's person reads as a new id taken: overwriting would move them here.
    errors = [
        RowError(
            line=i + 2,
            reason=f"site_id must be one of your sites ({', '.join(sorted(sites)) or 'none'})",
        )
        for i, p in enumerate(people)
        if p.site_id not in sites
    ]
    errors += [
        RowError(line=i + 2, reason=f"id {p.id!r} is taken by someone you do not manage")
        for i, p in enumerate(people)
        if p.id in home and home[p.id] not in sites
    ]
    if errors:
        raise _import_error(sorted(errors, key=lambda e: e.line))


async def _roster_badges(conn: AsyncConnection, badges: list[RosterBadge]) -> int:
    """Issues the roster's badges in the import's transaction; a UID already active for
    someone else refuses the whole import with its line."""
    now, issued, errors = datetime.now(UTC), 0, []
    for line, person_id, badge in badges:
        holder = await conn.scalar(
            select(BADGES.c.person_id).where(BADGES.c.uid == badge.uid, BADGES.c.status == "active")
        )
        if holder == person_id:
            continue
        if holder is not None:
            errors.append(
                RowError(
                    line=line,
                    reason=f"badge {badge.uid} is active for someone else; revoke it first",
                )
            )
            continue
        await _insert_badge(conn, badge, person_id, now)
        issued += 1
    if errors:
        raise _import_error(errors)
    return issued


async def list_people(
    conn: AsyncConnection,
    *,
    agency: str | None = None,
    kind: str | None = None,
    q: str | None = None,
) -> list[PersonPublic]:
    # PersonPublic has no `nip` field, so the NIP is neither selected nor returned.
    columns = [c for c in PEOPLE.c if c.name != "nip"]
    stmt = select(*columns).order_by(PEOPLE.c.id)
    if agency is not None:
        stmt = stmt.where(PEOPLE.c.agency == agency)
    if kind is not None:
        stmt = stmt.where(PEOPLE.c.kind == kind)
    if q:
        # Case-insensitive match on id, name or agency; LIKE wildcards in `q` are literal.
        pattern = (
            "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        stmt = stmt.where(
            or_(
                func.lower(PEOPLE.c.id).like(pattern, "\\"),
                func.lower(PEOPLE.c.name).like(pattern, "\\"),
                func.lower(PEOPLE.c.agency).like(pattern, "\\"),
            )
        )
    return [PersonPublic.model_validate(r._mapping) for r in await conn.execute(stmt)]


async def private_person(conn: AsyncConnection, person_id: str) -> PersonPrivate:
    """One person with their personal data (NIP): for themself and admins only."""
    row = (await conn.execute(select(PEOPLE).where(PEOPLE.c.id == person_id))).first()
    if row is None:
        raise NotFound(f"person {person_id!r} is unknown", title="Person not found")
    return PersonPrivate.model_validate(row._mapping)


# --- badges ------------------------------------------------------------------------


def _uid_taken(uid: str) -> DomainError:
    return Conflict(
        f"badge uid {uid} is already active for someone; revoke that badge first",
        title="Badge already active",
    )


async def _insert_badge(
    conn: AsyncConnection, badge: BadgeBase, person_id: str, now: datetime
) -> BadgePublic:
    person = (
        await conn.execute(select(PEOPLE.c.id, PEOPLE.c.active).where(PEOPLE.c.id == person_id))
    ).first()
    if person is None:
        raise NotFound(f"person {person_id!r} is unknown", title="Person not found")
    if not person.active:
        # Deprovisioned by the identity system (cloud/scim/): reactivate them there first.
        raise Conflict(f"person {person_id!r} is deactivated", title="Person not active")
    row = (
        await conn.execute(
            BADGES.insert()
            .values(
                kind=badge.kind, uid=badge.uid, person_id=person_id, status="active", issued_at=now
            )
            .returning(BADGES)
        )
    ).one()
    return BadgePublic.model_validate(row._mapping)


async def _badge_write(engine: AsyncEngine, uid: str, fn: Any, hook: Hook | None = None) -> Any:
    try:
        async with engine.begin() as conn:
            result = await fn(conn)
            if hook is not None:
                await hook(conn, result)
            return result
    except IntegrityError as exc:
        # The partial unique index is the arbiter: two racing issues of one uid
        # cannot both commit, whatever the checks before said.
        if "uq_badges_active_uid" in str(exc.orig) or "badges.uid" in str(exc.orig):
            raise _uid_taken(uid) from None
        raise


async def issue_badge(
    engine: AsyncEngine, body: BadgeCreate, hook: Hook | None = None
) -> BadgePublic:
    async def run(conn: AsyncConnection) -> BadgePublic:
        return await _insert_badge(conn, body, body.person_id, datetime.now(UTC))

    result: BadgePublic = await _badge_write(engine, body.uid, run, hook)
    return result


async def _end_badge(
    conn: AsyncConnection, badge_id: int, status: str, now: datetime
) -> BadgePublic:
    row = (
        await conn.execute(
            update(BADGES)
            .where(BADGES.c.id == badge_id, BADGES.c.status == "active")
            .values(status=status, revoked_at=now)
            .returning(BADGES)
        )
    ).first()
    if row is None:
        current = await conn.scalar(select(BADGES.c.status).where(BADGES.c.id == badge_id))
        if current is None:
            raise NotFound(f"badge {badge_id} is unknown", title="Badge not found")
        raise Conflict(f"badge {badge_id} is already {current}", title="Badge not active")
    return BadgePublic.model_validate(row._mapping)


async def end_badge(
    engine: AsyncEngine, badge_id: int, status: str, hook: Hook | None = None
) -> BadgePublic:
    """Revokes a badge (`revoked`) or records it lost (`lost`)."""
    async with engine.begin() as conn:
        ended = await _end_badge(conn, badge_id, status, datetime.now(UTC))
        if hook is not None:
            await hook(conn, ended)
        return ended


async def replace_badge(
    engine: AsyncEngine, badge_id: int, new: BadgeBase, hook: Hook | None = None
) -> BadgeReplacementPublic:
    """Marks the old badge `replaced` and issues `new` to the same person, atomically."""

    async def run(conn: AsyncConnection) -> BadgeReplacementPublic:
        now = datetime.now(UTC)
        old = await _end_badge(conn, badge_id, "replaced", now)
        issued = await _insert_badge(conn, new, old.person_id, now)
        return BadgeReplacementPublic(old=old, new=issued)

    result: BadgeReplacementPublic = await _badge_write(engine, new.uid, run, hook)
    return result


async def list_badges(conn: AsyncConnection, person: str | None) -> list[BadgePublic]:
    stmt = select(BADGES).order_by(BADGES.c.id)
    if person is not None:
        stmt = stmt.where(BADGES.c.person_id == person)
    return [BadgePublic.model_validate(r._mapping) for r in await conn.execute(stmt)]


async def allowlist(conn: AsyncConnection, node: str, now: datetime) -> AllowlistPublic:
    """Active badges an edge node should accept while offline.

    The holders are: people assigned to one of the node's desks, people with an
    active booking on one of them in the next 24 h, and, when the node serves
    drop-in desks, every ASN and every guest whose pass is valid now (drop-in
    is open to all staff).
    """
    node_desks = select(DESKS.c.id).where(DESKS.c.node_id == node)
    if await conn.scalar(select(DESKS.c.id).where(DESKS.c.node_id == node).limit(1)) is None:
        raise NotFound(f"node {node!r} serves no desks", title="Node not found")
    assigned = select(DESKS.c.assigned_person_id).where(
        DESKS.c.node_id == node, DESKS.c.assigned_person_id.is_not(None)
    )
    booked = select(BOOKINGS.c.person_id).where(
        BOOKINGS.c.desk_id.in_(node_desks),
        BOOKINGS.c.status.in_(("booked", "checked_in")),
        BOOKINGS.c.ends_at > now,
        BOOKINGS.c.starts_at < now + ALLOWLIST_HORIZON,
    )
    holders: list[Any] = [BADGES.c.person_id.in_(assigned), BADGES.c.person_id.in_(booked)]
    has_drop_in = await conn.scalar(
        select(DESKS.c.id).where(DESKS.c.node_id == node, DESKS.c.mode == "drop_in").limit(1)
    )
    if has_drop_in is not None:
        holders.append(
            BADGES.c.person_id.in_(
                select(PEOPLE.c.id).where(
                    or_(
                        PEOPLE.c.kind == "asn",
                        (PEOPLE.c.kind == "guest")
                        & or_(PEOPLE.c.valid_from.is_(None), PEOPLE.c.valid_from <= now)
                        & or_(PEOPLE.c.valid_until.is_(None), PEOPLE.c.valid_until > now),
                    )
                )
            )
        )
    rows = await conn.execute(
        select(BADGES.c.uid, BADGES.c.kind, BADGES.c.person_id)
        .where(BADGES.c.status == "active", or_(*holders))
        .order_by(BADGES.c.uid)
    )
    return AllowlistPublic(
        node=node,
        generated_at=now,
        badges=[AllowlistEntry.model_validate(r._mapping) for r in rows],
    )
