"""Sessions that end when they should: sign-out everywhere, deactivation, just-in-time people.

A session is a token (the provider's access token in the dashboards' cookie, or an
API bearer token); tokens cannot be recalled, so each request also asks whether the
person behind the token may still be signed in (`SessionGuard.check`):

- *sign out everywhere* bumps the person's session epoch and sets
  `person_identities.sessions_not_before` to now: every token issued (`iat`) before
  that moment is refused, on every device, and the person signs in again;
- *deactivation* bumps the epoch too and refuses every token until reactivated.

The answer is cached per person for `session_check_ttl_s` (at most 60 s), so a
revoked session stops working on every replica within that window, while a busy
client costs one small primary-key read a minute. A person without a row (everyone
until their first sign-out-everywhere) is active with no cut-off.

`provision` runs at each OIDC sign-in: it refuses a deactivated or (when the mapping
says so) an unknown person, creates an ASN just in time when the mapping asks for it
and the claims suffice, and keeps the unit the provider reports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.claims import ClaimMapping, ClaimRefused, Identity
from cloud.db.tables import PEOPLE, PERSON_IDENTITIES
from cloud.errors import NotFound

log = logging.getLogger(__name__)

# people.role keeps one of five roles; a just-in-time person gets the highest one mapped.
_ROSTER_ROLE_ORDER = ("admin", "facility_manager", "technician", "asn")
_CACHE_MAX = 65536


class SessionEnded(Exception):
    """The token is valid but its person may no longer be signed in; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class SessionGuard:
    """Per-request check of a person's sign-out cut-off and deactivation, cached briefly."""

    def __init__(
        self, engine: AsyncEngine, ttl_s: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock
        # subject -> (deactivated, not_before timestamp, cached until)
        self._cache: dict[str, tuple[bool, float | None, float]] = {}

    async def _state(self, subject: str) -> tuple[bool, float | None]:
        now = self._clock()
        known = self._cache.get(subject)
        if known is not None and now < known[2]:
            return known[0], known[1]
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        PERSON_IDENTITIES.c.deactivated_at, PERSON_IDENTITIES.c.sessions_not_before
                    ).where(PERSON_IDENTITIES.c.person_id == subject)
                )
            ).first()
        state = (False, None) if row is None else (row[0] is not None, _ts(row[1]))
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()  # bounded; the next requests read again
        self._cache[subject] = (state[0], state[1], now + self._ttl_s)
        return state

    def forget(self, subject: str) -> None:
        """Drop the cached answer, so this replica applies a change at once."""
        self._cache.pop(subject, None)

    async def check(self, subject: str, issued_at: object) -> None:
        deactivated, not_before = await self._state(subject)
        if deactivated:
            raise SessionEnded("This account is deactivated; ask the administrator.")
        if not_before is not None:
            iat = float(issued_at) if isinstance(issued_at, int | float) else None
            if iat is None or iat < not_before:
                raise SessionEnded("This session was signed out everywhere; sign in again.")


# --- changes ---------------------------------------------------------------------------------


async def _bump(conn: AsyncConnection, person_id: str, **values: object) -> int:
    """Bump the epoch (creating the row) with `values`; the new epoch."""
    exists = (
        await conn.execute(select(PEOPLE.c.id).where(PEOPLE.c.id == person_id))
    ).first() is not None
    if not exists:
        raise NotFound(f"No person {person_id!r}.")
    current = (
        await conn.execute(
            select(PERSON_IDENTITIES.c.session_epoch).where(
                PERSON_IDENTITIES.c.person_id == person_id
            )
        )
    ).scalar_one_or_none()
    # Whole seconds, as a token's `iat` is: a sign-in right after this (same second)
    # must not be refused. The price: a token issued earlier in that same second survives.
    now = datetime.now(UTC).replace(microsecond=0)
    if current is None:
        await conn.execute(
            insert(PERSON_IDENTITIES).values(
                person_id=person_id, session_epoch=1, sessions_not_before=now, **values
            )
        )
        return 1
    await conn.execute(
        update(PERSON_IDENTITIES)
        .where(PERSON_IDENTITIES.c.person_id == person_id)
        .values(
            session_epoch=PERSON_IDENTITIES.c.session_epoch + 1,
            sessions_not_before=now,
            **values,
        )
    )
    return int(current) + 1


async def sign_out_everywhere(conn: AsyncConnection, person_id: str) -> int:
    """End every session the person holds now; the new epoch. Commits."""
    epoch = await _bump(conn, person_id)
    await conn.commit()
    log.info("signed %s out everywhere (session epoch %d)", person_id, epoch)
    return epoch


async def mark_active(conn: AsyncConnection, person_id: str, active: bool) -> int:
    """Deactivate or reactivate a person inside the caller's transaction (SCIM
    deprovisioning uses it, so badges and sessions end in one commit); the new epoch."""
    return await _bump(conn, person_id, deactivated_at=None if active else datetime.now(UTC))


async def set_active(conn: AsyncConnection, person_id: str, active: bool) -> int:
    """Deactivate (every session ends, none starts) or reactivate a person. Commits."""
    epoch = await mark_active(conn, person_id, active)
    await conn.commit()
    log.info(
        "%s %s (session epoch %d)", "reactivated" if active else "deactivated", person_id, epoch
    )
    return epoch


async def session_state(conn: AsyncConnection, person_id: str) -> tuple[int, bool]:
    """(session epoch, active) of a person."""
    row = (
        await conn.execute(
            select(PERSON_IDENTITIES.c.session_epoch, PERSON_IDENTITIES.c.deactivated_at).where(
                PERSON_IDENTITIES.c.person_id == person_id
            )
        )
    ).first()
    return (0, True) if row is None else (int(row[0]), row[1] is None)


# --- sign-in -----------------------------------------------------------------------------------


async def provision(
    conn: AsyncConnection, identity: Identity, mapping: ClaimMapping, issuer: str | None
) -> bool:
    """Check (and if asked, create) the person signing in; True when created. Commits.

    Raises ClaimRefused with the reason when the person may not sign in.
    """
    person = (
        await conn.execute(select(PEOPLE.c.id).where(PEOPLE.c.id == identity.subject))
    ).first()
    if person is not None:
        row = (
            await conn.execute(
                select(PERSON_IDENTITIES.c.deactivated_at, PERSON_IDENTITIES.c.unit).where(
                    PERSON_IDENTITIES.c.person_id == identity.subject
                )
            )
        ).first()
        if row is not None and row[0] is not None:
            raise ClaimRefused("This account is deactivated in Ruang; ask the administrator.")
        if identity.unit is not None and (row is None or row[1] != identity.unit):
            if row is None:
                await conn.execute(
                    insert(PERSON_IDENTITIES).values(person_id=identity.subject, unit=identity.unit)
                )
            else:
                await conn.execute(
                    update(PERSON_IDENTITIES)
                    .where(PERSON_IDENTITIES.c.person_id == identity.subject)
                    .values(unit=identity.unit)
                )
            await conn.commit()
        return False
    if mapping.unknown_person == "allow":
        return False
    if mapping.unknown_person == "refuse":
        raise ClaimRefused(
            f"There is no person {identity.subject!r} in Ruang, and this sign-in service "
            "does not create people at first sign-in; ask the administrator."
        )
    missing = [
        what for what, value in (("name", identity.name), ("agency", identity.agency)) if not value
    ]
    if missing:
        raise ClaimRefused(
            "Ruang cannot create this person at first sign-in: the sign-in service did not "
            f"give their {' and '.join(missing)}."
        )
    role = next((r for r in _ROSTER_ROLE_ORDER if r in identity.roles), "asn")
    try:
        await _create(conn, identity, role, issuer)
    except IntegrityError:
        # The same person's first sign-in in two tabs at once: the other one created them.
        await conn.rollback()
        return False
    log.info("created person %s at first sign-in from %s", identity.subject, issuer)
    return True


async def _create(conn: AsyncConnection, identity: Identity, role: str, issuer: str | None) -> None:
    await conn.execute(
        insert(PEOPLE).values(
            id=identity.subject,
            kind="asn",
            name=identity.name,
            agency=identity.agency,
            role=role,
            site_id=min(identity.sites) if identity.sites else None,
        )
    )
    await conn.execute(
        insert(PERSON_IDENTITIES).values(
            person_id=identity.subject, issuer=issuer, unit=identity.unit
        )
    )
    await conn.commit()
