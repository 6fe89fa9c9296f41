"""QR check-in routes: a desk's printable code and the check-in it leads to.

The service is cloud/bookings/qrcheckin.py.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from fastapi.responses import Response

from cloud.api.scoping import scoped
from cloud.api_types import Problem
from cloud.bookings import qrcheckin
from cloud.bookings.schemas import BookingPublic, QrCheckin
from cloud.deps import BookingStoreDep, CheckinKeysDep, CommandsDep, DbDep, DeskChangesDep
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError

router = APIRouter(tags=["qr check-in"])


@router.get(
    "/desks/{desk_id}/qr.svg",
    dependencies=[scoped("facility_manager")],
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {}},
            "description": "QR code of `{public_base_url}/checkin/{desk}?k={key}`",
        },
        404: {"model": Problem, "description": "no such desk"},
    },
)
async def desk_qr(desk_id: str, conn: DbDep, keys: CheckinKeysDep) -> Response:
    if not await qrcheckin.desk_exists(conn, desk_id):
        raise ProblemError(404, f"desk {desk_id!r} is unknown", title="Desk not found")
    # Desk ids are free text in layouts: keep the header's file name plain.
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", desk_id)
    return Response(
        keys.svg(desk_id),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'inline; filename="{filename}-qr.svg"'},
    )


@router.post(
    "/desks/{desk_id}/checkin",
    response_model=BookingPublic,
    responses={
        403: {
            "model": Problem,
            "description": "wrong key; zone or desk not yours; your sign-in is not a person",
        },
        404: {"model": Problem, "description": "no such desk"},
        409: {
            "model": Problem,
            "description": "someone else holds the desk now, or it is out of service",
        },
    },
)
async def qr_checkin(
    desk_id: str,
    body: QrCheckin,
    store: BookingStoreDep,
    user: CurrentUser,
    keys: CheckinKeysDep,
    desk_changes: DeskChangesDep,
    commands: CommandsDep,
) -> BookingPublic:
    booking, node = await qrcheckin.check_in_with_key(store, keys, desk_id, body.key, user.subject)
    await qrcheckin.after_checkin(desk_id, node, desk_changes=desk_changes, commands=commands)
    return booking
