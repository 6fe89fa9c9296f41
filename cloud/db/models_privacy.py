"""ORM model of the personal-data access audit (cloud/privacy/access_audit.py).

One row per request that read another person's personal data: who read it, with which
role, what kind of data, about whom (when one person), in which site. Shares `Base`
with cloud/db/models.py; cloud/db/tables.py and the Alembic environment import this
module so the metadata is complete.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime


class PersonalDataRead(Base):
    """A read of personal data by someone other than its subject."""

    __tablename__ = "privacy_reads"
    __table_args__ = (
        Index("ix_privacy_reads_at", "at"),
        Index("ix_privacy_reads_actor_at", "actor", "at"),
        Index("ix_privacy_reads_subject_at", "subject", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The reader: the token's subject (a person id) and the role that allowed the read.
    actor: Mapped[str] = mapped_column(String(ID_LENGTH))
    role: Mapped[str] = mapped_column(String(32))
    # What was read (`person.private`, `person.list`, `floor.names`, `access_log`, ...).
    what: Mapped[str] = mapped_column(String(64))
    # The person read about when the request names one; NULL for a listing.
    subject: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # The site whose data it was, when there is one; how many records the answer held.
    site_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    records: Mapped[int] = mapped_column(Integer, default=0)
