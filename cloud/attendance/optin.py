"""Which agencies opted in to the attendance export, on what terms; changed by admins only.

Every change is written to the admin audit in its own transaction (`attendance.opt_in`,
`attendance.opt_out`, target `agency:<name>`). An agency without a row is refused an
export: the export is off by default.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.admin import audit
from cloud.attendance.schemas import AgencyOptInCreate, AgencyOptInPublic
from cloud.db.tables import ATTENDANCE_AGENCIES as T
from cloud.errors import Forbidden, NotFound
from cloud.people.auth import Principal


async def listing(conn: AsyncConnection) -> list[AgencyOptInPublic]:
    rows = (await conn.execute(select(T).order_by(T.c.agency))).mappings().all()
    return [AgencyOptInPublic.model_validate(dict(r)) for r in rows]


async def terms(conn: AsyncConnection, agency: str) -> AgencyOptInPublic:
    """The agency's opt-in; Forbidden when it has none (the export is off by default)."""
    row = (await conn.execute(select(T).where(T.c.agency == agency))).mappings().first()
    if row is None:
        raise Forbidden(
            f"agency {agency!r} has not opted in to the attendance export; an admin enables "
            "it with PUT /api/v1/attendance/agencies/{agency}",
            title="Attendance export not enabled for this agency",
        )
    return AgencyOptInPublic.model_validate(dict(row))


async def enable(
    conn: AsyncConnection, agency: str, body: AgencyOptInCreate, user: Principal
) -> AgencyOptInPublic:
    """Opts the agency in, or changes its terms (the first opt-in's time is kept)."""
    values = body.model_dump()
    changed = await conn.execute(update(T).where(T.c.agency == agency).values(**values))
    if not changed.rowcount:
        await conn.execute(T.insert().values(agency=agency, enabled_at=datetime.now(UTC), **values))
    await audit.record(
        conn,
        actor=user,
        action="attendance.opt_in",
        target=f"agency:{agency}",
        detail={"changed": bool(changed.rowcount), **values},
    )
    return await terms(conn, agency)


async def disable(conn: AsyncConnection, agency: str, user: Principal) -> None:
    gone = await conn.execute(delete(T).where(T.c.agency == agency))
    if not gone.rowcount:
        raise NotFound(f"agency {agency!r} has not opted in", title="Agency not opted in")
    await audit.record(
        conn, actor=user, action="attendance.opt_out", target=f"agency:{agency}", detail={}
    )
