"""QR check-in: the fallback when a badge or desk unit is not at hand.

Each desk gets a printed QR code with the URL
`{public_base_url}/checkin/{desk_id}?k={key}`, where the key is
HMAC-SHA256(server secret, desk id), base32, first 16 characters (80 bits).
Scanning it opens the web app, which posts the key back for the signed-in
person: the key proves the person stands at (or has seen) that very desk, so a
desk cannot be claimed from a desk list far away.

The secret is `RUANG_CHECKIN_QR_SECRET` or the file `RUANG_CHECKIN_QR_SECRET_FILE`,
the same on every replica; in development only, unset means a random one kept in
a file next to the snapshot signing key (`checkin-qr-secret`, created 0600,
cloud/keys.py). Changing it invalidates every printed code.

What a check-in does, in one booking-store transaction (queued with the other
booking writes): the person's own booking covering now is checked in; with no
booking now, a free `drop_in` or `reservable` desk (or their assigned one) gets
a walk-up booking exactly like a walk-up tap at the desk
(`cloud.bookings.checkins.walk_up`); a desk someone else holds now is refused (409).
Whether the desk unit is online does not matter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import segno
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings import checkins
from cloud.bookings.schemas import BookingPublic
from cloud.bookings.site_rules import check_walk_up, desk_context
from cloud.bookings.store import BookingStore
from cloud.db.models import ACTIVE_BOOKING_STATUSES
from cloud.db.tables import BOOKINGS, DESKS, PEOPLE
from cloud.errors import Conflict, Forbidden
from cloud.keys import CHECKIN_QR_SECRET, shared_secret
from cloud.live.hub import DeskChanges
from cloud.mqtt.commands import CommandSender, NotConnected
from cloud.settings import CloudSettings
from ruang import contract

log = logging.getLogger(__name__)

# The edge's "checked in" LED colour (edge/decisions.py LED_CHECKED_IN), solid.
GREEN = (0, 200, 0)
KEY_LENGTH = 16


class CheckinKeys:
    """Derives and checks the per-desk QR keys from the server secret."""

    def __init__(self, secret: bytes, public_base_url: str) -> None:
        self._secret = secret
        self.base_url = public_base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: CloudSettings) -> CheckinKeys:
        # Configured (value or file); created next to the snapshot key only in development.
        return cls(shared_secret(settings, CHECKIN_QR_SECRET), settings.public_base_url)

    def key(self, desk_id: str) -> str:
        digest = hmac.new(self._secret, desk_id.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode().rstrip("=").lower()[:KEY_LENGTH]

    def valid(self, desk_id: str, key: str) -> bool:
        # Constant time: the key must not be guessable character by character. As bytes:
        # compare_digest refuses str with non-ASCII characters (any text can arrive here).
        return hmac.compare_digest(self.key(desk_id).encode(), key.strip().lower().encode())

    def url(self, desk_id: str) -> str:
        return f"{self.base_url}/checkin/{quote(desk_id, safe='')}?k={self.key(desk_id)}"

    def svg(self, desk_id: str) -> bytes:
        """A printable QR code of the desk's URL (medium error correction survives wear)."""
        code = segno.make(self.url(desk_id), error="m", micro=False)
        out = io.BytesIO()
        code.save(
            out,
            kind="svg",
            scale=8,
            border=4,
            title=f"Check in at {desk_id}",
            xmldecl=True,
            unit="px",
        )
        return out.getvalue()


async def desk_exists(conn: AsyncConnection, desk_id: str) -> bool:
    return await conn.scalar(select(DESKS.c.id).where(DESKS.c.id == desk_id)) is not None


async def check_in_with_key(
    store: BookingStore, keys: CheckinKeys, desk_id: str, key: str, person_id: str
) -> tuple[BookingPublic, str]:
    """`check_in` after checking the desk's QR key and that the caller is a person (403s)."""
    if not keys.valid(desk_id, key):
        # Same answer for an unknown desk: the key does not tell which desks exist.
        raise Forbidden(
            "this check-in code is not valid for the desk; scan the code on the desk again",
            title="Wrong check-in code",
        )
    async with store.engine.connect() as conn:
        known = await conn.scalar(select(PEOPLE.c.id).where(PEOPLE.c.id == person_id))
    if known is None:
        raise Forbidden(
            "your sign-in is not tied to a person in the roster, so there is nobody to check in",
            title="Not a person",
        )
    return await check_in(store, desk_id, person_id)


async def after_checkin(
    desk_id: str, node: str, *, desk_changes: DeskChanges, commands: CommandSender
) -> None:
    """After the commit: the node's snapshot, live maps, and the desk's LED turned green."""
    desk_changes([desk_id])
    try:
        r, g, b = GREEN
        await commands.publish(
            contract.LedCommand(
                node=node, desk=desk_id, r=r, g=g, b=b, pattern="solid", duration_s=0
            )
        )
    except NotConnected:
        # The check-in stands; the next snapshot gives the node the same picture.
        log.info("LED of %s not set: broker not connected", desk_id)


def _local(ts: datetime, timezone: str) -> str:
    return ts.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


async def check_in(
    store: BookingStore, desk_id: str, person_id: str, now: datetime | None = None
) -> tuple[BookingPublic, str]:
    """Checks `person_id` in at `desk_id`; returns the booking and the desk's node.

    404 for an unknown desk or person, 403 for a desk reserved for another
    agency or assigned to someone else, 409 when someone else holds the desk now
    or the desk takes no walk-ups.
    """
    at = now or datetime.now(UTC)
    async with store.engine.connect() as conn:
        ctx = await desk_context(conn, desk_id, person_id)
        node = await conn.scalar(select(DESKS.c.node_id).where(DESKS.c.id == desk_id))
    desk, person, rules = ctx.desk, ctx.person, ctx.rules

    async def run(conn: AsyncConnection) -> tuple[Any, str]:
        own = (
            await conn.execute(
                select(BOOKINGS)
                .where(
                    BOOKINGS.c.desk_id == desk_id,
                    BOOKINGS.c.person_id == person_id,
                    BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES),
                    BOOKINGS.c.starts_at <= at + checkins.EARLY_CHECKIN,
                    BOOKINGS.c.ends_at > at,
                )
                .order_by(BOOKINGS.c.starts_at)
                .limit(1)
            )
        ).first()
        if own is not None:
            if own.status == "checked_in":
                return own, "already"  # scanning twice is harmless
            row = await checkins.check_in_booking(conn, own.id, at, None)
            if row is None:  # the edge checked it in meanwhile: same outcome
                row = (await conn.execute(select(BOOKINGS).where(BOOKINGS.c.id == own.id))).one()
            return row, "checked_in"
        other = (
            await conn.execute(
                select(BOOKINGS.c.ends_at)
                .where(
                    BOOKINGS.c.desk_id == desk_id,
                    BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES),
                    BOOKINGS.c.starts_at <= at,
                    BOOKINGS.c.ends_at > at,
                )
                .limit(1)
            )
        ).first()
        if other is not None:
            raise Conflict(
                f"desk {desk_id} is booked by someone else until "
                f"{_local(other.ends_at, rules.timezone)}; pick another desk",
                title="Desk booked by someone else",
            )
        check_walk_up(desk, person)
        created, _ = await checkins.walk_up(conn, desk_id, person_id, at, at, None)
        if created is None:
            raise Conflict(
                f"desk {desk_id} is booked by someone else from now on; pick another desk",
                title="Desk booked by someone else",
            )
        return created, "walk_up"

    row, _ = await store.write(run, desks=[desk_id], people=[person_id])
    return BookingPublic.model_validate(row._mapping), str(node)
