"""ORM model of the admin audit log (cloud/admin/audit.py): one row per admin action.

Shares `Base` with cloud/db/models.py; cloud/db/tables.py and the Alembic environment
import this module so the metadata is complete.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime


class AdminAudit(Base):
    """Who (actor id and roles) did what (action on target) when, with a secret-free detail."""

    __tablename__ = "admin_audit"
    __table_args__ = (
        Index("ix_admin_audit_at", "at"),
        Index("ix_admin_audit_actor_at", "actor", "at"),
        Index("ix_admin_audit_action_at", "action", "at"),
        Index("ix_admin_audit_target", "target"),
    )

    # BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY auto-increments there).
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The token's subject (a person id) and its roles, comma separated.
    actor: Mapped[str] = mapped_column(String(ID_LENGTH))
    actor_roles: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    # The site the target belongs to, when it has one: what a site-scoped reader may see.
    site_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
