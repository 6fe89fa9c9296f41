"""A person's notification preferences: language, and which kinds also come by email.

In-app notifications cannot be switched off (they are the record of what
happened to one's bookings); email can, as a whole or per kind. Without a row a
person gets Bahasa Indonesia and every email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import NOTIFICATION_PREFERENCES as PREFS
from cloud.db.tables import PEOPLE
from cloud.errors import Invalid, NotFound
from cloud.notifications.schemas import PreferencesPublic, PreferencesUpdate
from cloud.notifications.templates import DEFAULT_LANGUAGE, KINDS


@dataclass(frozen=True)
class Preferences:
    language: str = DEFAULT_LANGUAGE
    email_enabled: bool = True
    email_off_kinds: frozenset[str] = frozenset()

    def wants_email(self, kind: str) -> bool:
        return self.email_enabled and kind not in self.email_off_kinds


async def preferences_of(conn: AsyncConnection, person_id: str) -> Preferences:
    row = (await conn.execute(select(PREFS).where(PREFS.c.person_id == person_id))).first()
    if row is None:
        return Preferences()
    return Preferences(row.language, bool(row.email_enabled), frozenset(row.email_off_kinds))


def public(prefs: Preferences) -> PreferencesPublic:
    return PreferencesPublic(
        language=prefs.language,  # type: ignore[arg-type]
        email_enabled=prefs.email_enabled,
        email_off_kinds=sorted(prefs.email_off_kinds),
        kinds=sorted(KINDS),
    )


async def save(conn: AsyncConnection, person_id: str, body: PreferencesUpdate) -> Preferences:
    if await conn.scalar(select(PEOPLE.c.id).where(PEOPLE.c.id == person_id)) is None:
        raise NotFound("you are not in the roster, so there are no preferences to keep")
    unknown = sorted(set(body.email_off_kinds) - set(KINDS))
    if unknown:
        raise Invalid(f"unknown notification kinds: {', '.join(unknown)}")
    values = {
        "language": body.language,
        "email_enabled": body.email_enabled,
        "email_off_kinds": sorted(set(body.email_off_kinds)),
        "updated_at": datetime.now(UTC),
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    await conn.execute(
        insert(PREFS)
        .values(person_id=person_id, **values)
        .on_conflict_do_update(index_elements=[PREFS.c.person_id], set_=values)
    )
    return await preferences_of(conn, person_id)
