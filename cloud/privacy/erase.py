"""Erasure of a person (UU PDP Pasal 8 and 16): identity and badges gone, history anonymous.

`erase_person` runs in one transaction. The person's row is replaced by a pseudonymous
one (`anon-<random>`, no name, agency, NIP, e-mail or pass; kind, role and home site
kept so per-site figures stay right) and every history row that named the person id
now names the pseudonym, so bookings, rides and door decisions still count in the
utilisation and ridership figures exactly as before, but no longer lead to anyone;
desk and room bookings not begun yet are cancelled.
The random pseudonym is stored nowhere else: nothing maps it back.

Gone: the person's badges (every status), their raw badge uids in events, the access
log and desk state, their notifications, preferences and calendar tokens, dead
letters that carried their id or badge, the BLE badge's fleet status, their place in
door-group member lists; the visitor records they hosted lose the guest's identity
(name, contact, organisation, purpose, card). Text mentions of their name or e-mail
inside JSON documents (notifications to guests, audit details) are blanked.
The caller re-publishes every node's snapshot so the badges leave the edge too.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, Table, cast, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.models import Base
from cloud.db.tables import (
    ACCESS_CHANGES,
    ACCESS_GROUPS,
    ACCESS_LOG,
    ADMIN_AUDIT,
    BADGES,
    BOOKINGS,
    CALENDAR_TOKENS,
    DEAD_LETTERS,
    DESKS,
    DEVICE_STATUS,
    EVENTS,
    INTEGRATION_EVENTS,
    NOTIFICATION_DELIVERIES,
    NOTIFICATION_PREFERENCES,
    NOTIFICATIONS,
    PEOPLE,
    PERSON_GROUP_MEMBERS,
    PERSON_IDENTITIES,
    ROOM_BOOKINGS,
    VISITS,
)
from cloud.errors import NotFound
from cloud.privacy import lookup
from cloud.privacy.schemas import ErasurePublic

ERASED = "[dihapus]"
# Person-id columns whose rows stay as anonymous history (renamed to the pseudonym).
RENAMED = {
    name: columns
    for name, columns in lookup.PERSON_COLUMNS.items()
    if name not in ("people", "badges", "calendar_tokens", "notifications",
                    "notification_preferences", "person_group_members", "person_identities")
}  # fmt: skip


def new_pseudonym() -> str:
    return f"anon-{secrets.token_hex(8)}"


def rewrite(value: Any, ids: dict[str, str | None], texts: Iterable[str]) -> Any:
    """`value` (decoded JSON) with exact strings in `ids` mapped (None drops the value to
    null) and every occurrence of `texts` inside strings blanked."""
    texts = [t for t in texts if t]
    if isinstance(value, str):
        if value in ids:
            return ids[value]
        for t in texts:
            value = value.replace(t, ERASED)
        return value
    if isinstance(value, dict):
        return {k: rewrite(v, ids, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite(v, ids, texts) for v in value]
    return value


def _needles(person: dict[str, Any]) -> list[str]:
    """Identity texts that must not survive anywhere: name, e-mail, NIP, pass number."""
    return [str(person[k]) for k in ("name", "email", "nip", "pass_number") if person.get(k)]


async def _rewrite_json(
    conn: AsyncConnection,
    table: Table,
    column: str,
    ids: dict[str, str | None],
    texts: list[str],
) -> int:
    """Rewrites `column` of the rows whose JSON text mentions an id or an identity text."""
    col = table.c[column]
    pk = next(iter(table.primary_key.columns))
    words = [*ids, *texts]
    if not words:
        return 0
    cond = or_(
        lookup.json_mentions(col, *ids),
        *(cast(col, String).like(f"%{lookup.escape_like(t)}%", escape="\\") for t in texts),
    )
    changed = 0
    for key, value in (await conn.execute(select(pk, col).where(cond))).all():
        new = rewrite(value, ids, texts)
        if new != value:
            await conn.execute(update(table).where(pk == key).values({column: new}))
            changed += 1
    return changed


async def erase_person(conn: AsyncConnection, person_id: str) -> ErasurePublic:
    """Anonymises `person_id` in the caller's transaction; NotFound when unknown."""
    person = await lookup.person_row(conn, person_id)
    if person is None:
        raise NotFound(f"person {person_id!r} is unknown", title="Person not found")
    pseudonym = new_pseudonym()
    uids = await lookup.badge_uids(conn, person_id)
    guests = await _guest_contacts(conn, person_id)
    texts = [*_needles(person), *guests]
    counts: dict[str, int] = {}

    def count(table: str, n: int | None) -> None:
        if n:
            counts[table] = counts.get(table, 0) + int(n)

    await conn.execute(
        PEOPLE.insert().values(
            id=pseudonym, kind=person["kind"], name=pseudonym, role=person["role"],
            site_id=person["site_id"],
        )
    )  # fmt: skip
    # History keeps its rows, now under the pseudonym.
    for name, columns in RENAMED.items():
        table = Base.metadata.tables[name]
        for column in columns:
            result = await conn.execute(
                update(table).where(table.c[column] == person_id).values({column: pseudonym})
            )
            count(name, result.rowcount)
    result = await conn.execute(
        update(PEOPLE).where(PEOPLE.c.host_person_id == person_id).values(host_person_id=pseudonym)
    )
    count("people", result.rowcount)
    count("bookings", await _cancel_future(conn, pseudonym))
    # Things only the person had use for: gone.
    mine = select(NOTIFICATIONS.c.id).where(NOTIFICATIONS.c.person_id == person_id)
    deliveries = NOTIFICATION_DELIVERIES
    await conn.execute(delete(deliveries).where(deliveries.c.notification_id.in_(mine)))
    # Invitations sent to the erased host's guests: their address is the guest's identity.
    if guests:
        to_guests = select(NOTIFICATIONS.c.id).where(NOTIFICATIONS.c.address.in_(guests))
        await conn.execute(delete(deliveries).where(deliveries.c.notification_id.in_(to_guests)))
        result = await conn.execute(
            delete(NOTIFICATIONS).where(NOTIFICATIONS.c.address.in_(guests))
        )
        count("notifications", result.rowcount)
    # Group memberships (SCIM) and the identity row (unit, provider, session epoch) go:
    # they describe the person, not what happened.
    for table in (
        NOTIFICATIONS, NOTIFICATION_PREFERENCES, CALENDAR_TOKENS, BADGES,
        PERSON_GROUP_MEMBERS, PERSON_IDENTITIES,
    ):  # fmt: skip
        result = await conn.execute(delete(table).where(table.c.person_id == person_id))
        count(table.name, result.rowcount)
    ids: dict[str, str | None] = {person_id: pseudonym, **{uid: None for uid in uids}}
    if uids:
        result = await conn.execute(
            update(DESKS).where(DESKS.c.occupant_badge.in_(uids)).values(occupant_badge=None)
        )
        count("desks", result.rowcount)
        result = await conn.execute(
            update(ACCESS_LOG).where(ACCESS_LOG.c.badge.in_(uids)).values(badge=None)
        )
        count("access_log", result.rowcount)
        result = await conn.execute(
            delete(DEVICE_STATUS).where(DEVICE_STATUS.c.device.in_(lookup.device_ids(uids)))
        )
        count("device_status", result.rowcount)
    count("events", await _events(conn, ids, uids, texts))
    # JSON documents that may name the person: their id becomes the pseudonym, their badge
    # uids null, their name and e-mail blanked.
    for table, column in (
        (INTEGRATION_EVENTS, "data"),
        (NOTIFICATIONS, "data"),
        (NOTIFICATIONS, "attachments"),
        (ACCESS_CHANGES, "data"),
        (ADMIN_AUDIT, "detail"),
    ):
        count(table.name, await _rewrite_json(conn, table, column, ids, texts))
    count("access_groups", await _leave_groups(conn, person_id))
    count("dead_letters", await _dead_letters(conn, [person_id, *uids, *texts]))
    result = await conn.execute(
        update(ADMIN_AUDIT)
        .where(ADMIN_AUDIT.c.target == f"person:{person_id}")
        .values(target=f"person:{pseudonym}")
    )
    count("admin_audit", result.rowcount)
    count("visits", await _anonymise_visits(conn, pseudonym))
    await conn.execute(delete(PEOPLE).where(PEOPLE.c.id == person_id))
    return ErasurePublic(pseudonym=pseudonym, badges_removed=len(uids), rows_anonymised=counts)


async def _events(
    conn: AsyncConnection, ids: dict[str, str | None], uids: list[str], texts: list[str]
) -> int:
    person_id = next(iter(ids))
    cond = lookup.json_mentions(EVENTS.c.payload, person_id)
    if uids:
        cond = or_(EVENTS.c.badge.in_(uids), cond)
    changed = 0
    for key, badge, payload in (
        await conn.execute(select(EVENTS.c.id, EVENTS.c.badge, EVENTS.c.payload).where(cond))
    ).all():
        await conn.execute(
            update(EVENTS)
            .where(EVENTS.c.id == key)
            .values(badge=None if badge in uids else badge, payload=rewrite(payload, ids, texts))
        )
        changed += 1
    return changed


async def _leave_groups(conn: AsyncConnection, person_id: str) -> int:
    t = ACCESS_GROUPS
    changed = 0
    found = await conn.execute(
        select(t.c.id, t.c.members).where(lookup.json_mentions(t.c.members, person_id))
    )
    for key, members in found.all():
        if person_id in (members or []):
            kept = [m for m in members if m != person_id]
            await conn.execute(update(t).where(t.c.id == key).values(members=kept))
            changed += 1
    return changed


async def _dead_letters(conn: AsyncConnection, words: list[str]) -> int:
    """Dead letters that carry the person (raw bytes): deleted, they cannot be replayed now."""
    needles = [w.encode() for w in words if w]
    gone = [
        key
        for key, payload in (await conn.execute(select(DEAD_LETTERS.c.id, DEAD_LETTERS.c.payload)))
        if any(n in payload for n in needles)
    ]
    if gone:
        await conn.execute(delete(DEAD_LETTERS).where(DEAD_LETTERS.c.id.in_(gone)))
    return len(gone)


async def _cancel_future(conn: AsyncConnection, pseudonym: str) -> int:
    """Desk and room bookings not begun yet are cancelled: nobody will come to them.

    Their meeting subjects go too (a title may name people). Seat reservations and
    pool-car requests are left to their own expiry jobs, which keep the seat counts.
    """
    now = datetime.now(UTC)
    changed = 0
    for table in (BOOKINGS, ROOM_BOOKINGS):
        values: dict[str, Any] = {"status": "cancelled"}
        if table is BOOKINGS:
            values["cancelled_at"] = now
        result = await conn.execute(
            update(table)
            .where(table.c.person_id == pseudonym, table.c.status == "booked")
            .where(table.c.starts_at > now)
            .values(values)
        )
        changed += int(result.rowcount or 0)
    await conn.execute(
        update(ROOM_BOOKINGS).where(ROOM_BOOKINGS.c.person_id == pseudonym).values(title=None)
    )
    return changed


async def _guest_contacts(conn: AsyncConnection, person_id: str) -> list[str]:
    """Names, e-mails and phones of the guests the person hosted (their visitor log)."""
    c = VISITS.c
    rows = await conn.execute(
        select(c.guest_name, c.guest_email, c.guest_phone).where(c.host_person_id == person_id)
    )
    return sorted({v for row in rows for v in row if v and v != ERASED})


async def _anonymise_visits(conn: AsyncConnection, pseudonym: str) -> int:
    """The visitor log of the erased host: the guests' identity goes with the host's."""
    result = await conn.execute(
        update(VISITS)
        .where(VISITS.c.host_person_id == pseudonym)
        .values(
            guest_name=ERASED, guest_email=None, guest_phone=None, organisation=None,
            purpose=None, card_uid=None,
        )
    )  # fmt: skip
    return int(result.rowcount or 0)
