"""ORM model of the attendance export's opt-in (cloud/attendance/, docs/attendance.md).

One row per agency (*instansi*) that enabled the export to its performance system
(e-kinerja); no row, no export. Shares `Base` with cloud/db/models.py; cloud/db/tables.py
and the Alembic environment import this module so the metadata is complete.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import Base, UtcDateTime


class AttendanceAgency(Base):
    """An agency that opted in, the system that receives its export and what it may hold."""

    __tablename__ = "attendance_agencies"

    # The agency's name exactly as `people.agency` spells it.
    agency: Mapped[str] = mapped_column(String(200), primary_key=True)
    receiver: Mapped[str] = mapped_column(String(200))
    # Names and NIPs travel only when the receiving system needs them to match people.
    include_identity: Mapped[bool] = mapped_column(Boolean, default=False)
    # The agency's remote (work-from-anywhere) weekdays, ISO numbers 1 (Mon) .. 5 (Fri).
    remote_weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    enabled_at: Mapped[datetime] = mapped_column(UtcDateTime)
