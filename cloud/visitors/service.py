"""Visits from invitation to check-out (docs/visitors.md).

Who may do what (docs/security.md, "Who sees what"):
- a host (any signed-in person but a guest) invites, edits and cancels their own visits;
  admins may name another host;
- the `reception` role of a site (token `sites`) lists that site's visits of today with
  the guests' names, searches them, checks guests in (scanned pass, typed code, or a
  visit found by search) and out;
- nobody else reads a visit: another person's visit answers 404 as if it did not exist.

Where a guest may go is fixed at invitation: the managed doors (cloud/access) named,
or by default the doors of the host's floor plus the site's doors on no floor (the
lobby and entrance doors). The temporary card handed out at check-in opens exactly
those doors inside the visit window (cloud/visitors/credentials.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.access.rights import badge_ref
from cloud.db.tables import ACCESS_DOORS, BADGES, DESKS, FLOORS, PEOPLE, SITES, VISITS
from cloud.errors import Conflict, Forbidden, Invalid, NotFound
from cloud.integrations.events import record_event
from cloud.notifications.outbox import notify, notify_address
from cloud.people import access
from cloud.people.auth import Principal
from cloud.visitors.passes import PassKeys, new_code, qr_svg, visit_ics
from cloud.visitors.schemas import CheckIn, VisitBase, VisitCreate, VisitPublic

RECEPTION_ROLES = ("reception",)
# A guest may check in this long before the window opens (early arrivals wait in the lobby).
EARLY_CHECKIN = timedelta(hours=1)


def reception_scope(user: Principal) -> access.Scope:
    """The sites whose visitors `user` may see by name as reception (None: all, admins)."""
    return access.site_scope(user, RECEPTION_ROLES)


def _public(row: Any) -> VisitPublic:
    return VisitPublic.model_validate(dict(row._mapping))


async def _row(conn: AsyncConnection, visit_id: int) -> Any:
    row = (await conn.execute(select(VISITS).where(VISITS.c.id == visit_id))).first()
    if row is None:
        raise NotFound(f"visit {visit_id} not found", title="Visit not found")
    return row


async def _hosted(conn: AsyncConnection, user: Principal, visit_id: int) -> Any:
    """The visit if `user` hosts it (or is an admin); 404 otherwise."""
    row = await _row(conn, visit_id)
    if not user.is_admin and row.host_person_id != user.subject:
        raise NotFound(f"visit {visit_id} not found", title="Visit not found")
    return row


async def _received(conn: AsyncConnection, user: Principal, visit_id: int) -> Any:
    """The visit if it lies in `user`'s reception sites; 403 without the role, else 404."""
    scope = reception_scope(user)
    if scope is not None and not scope:
        raise Forbidden("This needs the reception role of the visit's site.")
    row = await _row(conn, visit_id)
    if not access.in_scope(scope, [row.site_id]):
        raise NotFound(f"visit {visit_id} not found", title="Visit not found")
    return row


async def get(conn: AsyncConnection, user: Principal, visit_id: int) -> VisitPublic:
    """One visit, for its host, the reception of its site, or an admin."""
    row = await _row(conn, visit_id)
    if row.host_person_id != user.subject and not access.in_scope(
        reception_scope(user), [row.site_id]
    ):
        raise NotFound(f"visit {visit_id} not found", title="Visit not found")
    return _public(row)


async def hosted_by(conn: AsyncConnection, user: Principal) -> list[VisitPublic]:
    """The caller's own visits as host, newest window first."""
    rows = await conn.execute(
        select(VISITS)
        .where(VISITS.c.host_person_id == user.subject)
        .order_by(VISITS.c.starts_at.desc(), VISITS.c.id.desc())
        .limit(500)
    )
    return [_public(r) for r in rows]


# --- invitation -------------------------------------------------------------------------------


async def _place(
    conn: AsyncConnection, host: Any, body: VisitCreate
) -> tuple[str, str | None, list[str]]:
    """(site, floor, doors) of a new visit, from the body or the host's defaults."""
    site = body.site_id or host.site_id
    if site is None:
        raise Invalid("the host has no home site: name the site_id of the visit")
    if await conn.scalar(select(SITES.c.id).where(SITES.c.id == site)) is None:
        raise Invalid(f"site {site!r} does not exist")
    floor = body.floor_id
    if floor is None:
        floor = await conn.scalar(
            select(DESKS.c.floor_id)
            .where(DESKS.c.assigned_person_id == host.id)
            .order_by(DESKS.c.id)
            .limit(1)
        )
    if body.doors is not None:
        doors = sorted(set(body.doors))
        known = set(
            await conn.scalars(
                select(ACCESS_DOORS.c.id).where(
                    ACCESS_DOORS.c.id.in_(doors), ACCESS_DOORS.c.site_id == site
                )
            )
        )
        unknown = [d for d in doors if d not in known]
        if unknown:
            raise Invalid(f"not managed doors of site {site!r}: {', '.join(unknown)}")
        return site, floor, doors
    on_floor: ColumnElement[bool] = ACCESS_DOORS.c.floor_id.is_(None)
    if floor is not None:
        on_floor = or_(on_floor, ACCESS_DOORS.c.floor_id == floor)
    doors = list(
        await conn.scalars(
            select(ACCESS_DOORS.c.id)
            .where(ACCESS_DOORS.c.site_id == site, on_floor)
            .order_by(ACCESS_DOORS.c.id)
        )
    )
    return site, floor, doors


async def _send_invitation(
    conn: AsyncConnection, keys: PassKeys, row: Any, now: datetime, *, cancelled: bool = False
) -> None:
    """The guest's message: the visit, the QR pass and the ICS, through the notification outbox."""
    address = row.guest_email or row.guest_phone
    host_name = await conn.scalar(select(PEOPLE.c.name).where(PEOPLE.c.id == row.host_person_id))
    site_name, tz = (
        await conn.execute(select(SITES.c.name, SITES.c.timezone).where(SITES.c.id == row.site_id))
    ).one()
    floor_name = None
    if row.floor_id is not None:
        floor_name = await conn.scalar(select(FLOORS.c.name).where(FLOORS.c.id == row.floor_id))
    place = f"{site_name}, {floor_name}" if floor_name else str(site_name)
    token = keys.token(row.id, row.pass_code)
    lang_code = {"id": "Kode pass", "en": "Pass code"}[row.language]
    ics = visit_ics(
        visit_id=row.id, starts_at=row.starts_at, ends_at=row.ends_at, place=place,
        summary={"id": "Kunjungan", "en": "Visit"}[row.language] + f": {place}",
        description=f"{lang_code}: {row.pass_code}", now=now, cancelled=cancelled,
        sequence=row.revision,
    )  # fmt: skip
    attachments = [("kunjungan.ics", "text/calendar", ics)]
    if not cancelled:
        attachments.insert(0, ("pass.svg", "image/svg+xml", qr_svg(token)))
    window = f"{row.starts_at.timestamp():.0f}-{row.ends_at.timestamp():.0f}"
    await notify_address(
        conn,
        address=address,
        language=row.language,
        kind="visitor_invitation",
        data={
            "host": host_name or row.host_person_id,
            "place": place,
            "starts_at": row.starts_at.isoformat(),
            "ends_at": row.ends_at.isoformat(),
            "timezone": tz,
            "pass_code": row.pass_code,
        },
        dedup_key=f"visitor_invitation:{row.id}:{window}:{'x' if cancelled else 'ok'}",
        attachments=attachments,
    )


async def invite(
    conn: AsyncConnection, user: Principal, body: VisitCreate, keys: PassKeys, now: datetime
) -> VisitPublic:
    """Records the invitation and queues the guest's message (in the caller's transaction)."""
    if not user.has("asn", "facility_manager", "technician", "security", "reception", "admin"):
        raise Forbidden("Guests cannot invite guests.")
    host_id = body.host_person_id if (user.is_admin and body.host_person_id) else user.subject
    if body.host_person_id not in (None, host_id):
        raise Forbidden("Only admins invite on behalf of another host.")
    host = (await conn.execute(select(PEOPLE).where(PEOPLE.c.id == host_id))).first()
    if host is None or host.kind != "asn":
        raise Invalid(f"the host {host_id!r} is not a person of the roster who may host")
    if body.ends_at <= now:
        raise Invalid("the visit's window has already ended")
    site, floor, doors = await _place(conn, host, body)
    values = body.model_dump(include=set(VisitBase.model_fields))
    visit_id = await conn.scalar(
        VISITS.insert()
        .values(
            **values, site_id=site, host_person_id=host_id, floor_id=floor, doors=doors,
            status="invited", pass_code=new_code(), created_at=now,
        )
        .returning(VISITS.c.id)
    )  # fmt: skip
    row = await _row(conn, int(visit_id or 0))
    await _send_invitation(conn, keys, row, now)
    return _public(row)


async def edit(
    conn: AsyncConnection, user: Principal, visit_id: int, body: VisitBase, keys: PassKeys,
    now: datetime,
) -> VisitPublic:  # fmt: skip
    """Changes the guest's details or window of a visit not yet over; the guest hears again."""
    row = await _hosted(conn, user, visit_id)
    if row.status in ("cancelled", "checked_out"):
        raise Conflict(f"visit {visit_id} is {row.status}", title="Visit closed")
    if body.ends_at <= now:
        raise Invalid("the visit's window has already ended")
    await conn.execute(
        VISITS.update()
        .where(VISITS.c.id == visit_id)
        .values(**body.model_dump(), revision=VISITS.c.revision + 1)
    )
    row = await _row(conn, visit_id)
    await _send_invitation(conn, keys, row, now)
    return _public(row)


async def cancel(
    conn: AsyncConnection, user: Principal, visit_id: int, keys: PassKeys, now: datetime
) -> VisitPublic:
    """Cancels a visit not checked in yet; the guest gets a cancelled ICS."""
    row = await _hosted(conn, user, visit_id)
    if row.status != "invited":
        raise Conflict(f"visit {visit_id} is {row.status}", title="Visit not cancellable")
    await conn.execute(
        VISITS.update()
        .where(VISITS.c.id == visit_id)
        .values(status="cancelled", cancelled_at=now, revision=VISITS.c.revision + 1)
    )
    row = await _row(conn, visit_id)
    await _send_invitation(conn, keys, row, now, cancelled=True)
    return _public(row)


# --- reception --------------------------------------------------------------------------------


async def today(
    conn: AsyncConnection, user: Principal, site: str | None, q: str | None, now: datetime
) -> list[VisitPublic]:
    """The visits of today (site time) at the caller's reception sites; `q` searches names."""
    scope = reception_scope(user)
    if scope is not None and not scope:
        raise Forbidden("This needs the reception role of a site.")
    if site is not None and not access.in_scope(scope, [site]):
        raise NotFound(f"site {site!r} not found", title="Site not found")
    stmt = (
        select(VISITS, SITES.c.timezone)
        .join(SITES, SITES.c.id == VISITS.c.site_id)
        .where(
            VISITS.c.status != "cancelled",
            # A wide net first; the site's local day decides below.
            and_(VISITS.c.ends_at > now - timedelta(hours=36),
                 VISITS.c.starts_at < now + timedelta(hours=36)),
        )
        .order_by(VISITS.c.starts_at, VISITS.c.id)
    )  # fmt: skip
    if site is not None:
        stmt = stmt.where(VISITS.c.site_id == site)
    elif scope is not None:
        stmt = stmt.where(VISITS.c.site_id.in_(scope))
    needle = (q or "").strip().casefold()
    out = []
    for row in await conn.execute(stmt):
        tz = ZoneInfo(row.timezone)
        day = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        if not (row.starts_at < day + timedelta(days=1) and row.ends_at > day):
            continue
        hay = f"{row.guest_name} {row.organisation or ''}".casefold()
        if needle and needle not in hay:
            continue
        out.append(_public(row))
    return out


async def _find_pass(conn: AsyncConnection, keys: PassKeys, body: CheckIn) -> int:
    if body.visit_id is not None:
        return body.visit_id
    read = keys.read(body.code or "")
    if read is None:
        raise NotFound("this pass is not a Ruang visitor pass, or it is damaged",
                       title="Pass not recognised")  # fmt: skip
    visit_id, code = read
    found = await conn.scalar(select(VISITS.c.id).where(VISITS.c.pass_code == code))
    if found is None or (visit_id is not None and found != visit_id):
        raise NotFound("no visit has this pass", title="Pass not recognised")
    return int(found)


async def check_in(
    conn: AsyncConnection, user: Principal, body: CheckIn, keys: PassKeys, now: datetime
) -> VisitPublic:
    """Reception checks a guest in; the host is told (in-app + email) in the same transaction."""
    row = await _received(conn, user, await _find_pass(conn, keys, body))
    if row.status != "invited":
        raise Conflict(f"visit {row.id} is {row.status}", title="Visit not awaiting check-in")
    if now >= row.ends_at:
        raise Conflict("the visit's window has ended", title="Visit over")
    if now < row.starts_at - EARLY_CHECKIN:
        raise Conflict("too early: the visit starts at " + row.starts_at.isoformat(),
                       title="Visit not started")  # fmt: skip
    card = None
    if body.card_uid is not None:
        kind = "ble" if body.card_uid.startswith("ble:") else "nfc"
        card = badge_ref(body.card_uid, kind)
        staff = await conn.scalar(
            select(BADGES.c.id).where(BADGES.c.status == "active", BADGES.c.uid.in_(
                {body.card_uid, card, card.removeprefix("ble:")}))
        )  # fmt: skip
        other = await conn.scalar(
            select(VISITS.c.id).where(VISITS.c.status == "checked_in", VISITS.c.card_uid == card)
        )
        if staff is not None or other is not None:
            raise Conflict("this card is in use by someone else", title="Card in use")
    await conn.execute(
        VISITS.update()
        .where(VISITS.c.id == row.id)
        .values(status="checked_in", checked_in_at=now, card_uid=card)
    )
    visit = _public(await _row(conn, row.id))
    # Same transaction: integrations hear of the arrival exactly when it is recorded.
    await record_event(conn, "visitor.checked_in", visit.model_dump(mode="json"))
    tz = await conn.scalar(select(SITES.c.timezone).where(SITES.c.id == row.site_id))
    await notify(
        conn,
        person_id=row.host_person_id,
        kind="visitor_arrived",
        data={"visitor": row.guest_name, "arrived_at": now.isoformat(), "timezone": tz,
              "visit_id": row.id},
        dedup_key=f"visitor_arrived:{row.id}",
    )  # fmt: skip
    return visit


async def check_out(
    conn: AsyncConnection, user: Principal, visit_id: int, now: datetime
) -> VisitPublic:
    """Reception checks a guest out: the temporary card stops opening doors (snapshots)."""
    row = await _received(conn, user, visit_id)
    if row.status != "checked_in":
        raise Conflict(f"visit {visit_id} is {row.status}", title="Visit not checked in")
    await conn.execute(
        VISITS.update()
        .where(VISITS.c.id == visit_id)
        .values(status="checked_out", checked_out_at=now)
    )
    visit = _public(await _row(conn, visit_id))
    await record_event(conn, "visitor.checked_out", visit.model_dump(mode="json"))
    return visit


async def pass_token(conn: AsyncConnection, user: Principal, visit_id: int, keys: PassKeys) -> str:
    """The pass token of the caller's own visit (to show or forward the QR again)."""
    row = await _hosted(conn, user, visit_id)
    if row.status not in ("invited", "checked_in"):
        raise Conflict(f"visit {visit_id} is {row.status}", title="Visit closed")
    return keys.token(row.id, row.pass_code)
