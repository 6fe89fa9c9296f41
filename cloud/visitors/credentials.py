"""Guests' temporary cards in the door nodes' signed snapshots.

A checked-in visit with a card becomes one snapshot badge on every node that controls
one of the visit's doors, through the door-rights mechanism of cloud/access:
`valid_from`/`valid_until` are the visit window and each allowed door carries that
window (clipped to the snapshot's period). The node enforces both offline
(edge/devices/door_rights.py), so the card stops at the window's end even with the
uplink down. Check-out (or cancellation) removes the badge from the next snapshot,
which the API republishes at once.

The badge's `person` is `visit-<id>`: the node's access log names the visit, never the
guest (docs/privacy.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.access.rights import BadgeRights
from cloud.db.tables import VISITS


def visit_person(visit_id: int) -> str:
    """The pseudonymous holder a guest's card is logged under."""
    return f"visit-{visit_id}"


async def visitor_rights(
    conn: AsyncConnection, doors: set[str], start: datetime, end: datetime
) -> dict[str, BadgeRights]:
    """{card: rights} of the checked-in guests whose visit opens one of `doors` in [start, end)."""
    if not doors:
        return {}
    rows = await conn.execute(
        select(VISITS.c.id, VISITS.c.card_uid, VISITS.c.starts_at, VISITS.c.ends_at,
               VISITS.c.doors)
        .where(
            VISITS.c.status == "checked_in",
            VISITS.c.card_uid.is_not(None),
            VISITS.c.ends_at > start,
            VISITS.c.starts_at < end,
        )
        .order_by(VISITS.c.id)
    )  # fmt: skip
    out: dict[str, BadgeRights] = {}
    for visit_id, card, starts, ends, allowed in rows:
        window = (max(starts, start).timestamp(), min(ends, end).timestamp())
        mine = sorted(set(allowed or []) & doors)
        if not mine:
            continue
        out[card] = BadgeRights(
            person=visit_person(visit_id),
            valid_from=starts.timestamp(),
            valid_until=ends.timestamp(),
            doors={d: [window] for d in mine},
        )
    return out
