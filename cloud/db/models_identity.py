"""Per-person identity state next to `people`: sessions epoch, deactivation, provider, unit.

Kept in its own table so sign-out-everywhere and deactivation (cloud/people/sessions.py)
write one small row instead of the roster's `people` row. A person without a row
has never signed out everywhere and is active, which is how every existing person
starts. Importing this module registers the table on Base.metadata.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime


class PersonIdentity(Base):
    __tablename__ = "person_identities"

    person_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    # Bumped by sign-out-everywhere and by (de)activation; tokens issued before
    # `sessions_not_before` are refused from then on.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sessions_not_before: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The provider that created the person just in time (None: the roster did).
    issuer: Mapped[str | None] = mapped_column(String(500))
    # The organisational unit within the agency, from the provider's claims.
    unit: Mapped[str | None] = mapped_column(String(200))
