"""ORM models of door access control (docs/access-control.md): doors, groups, grants,
holidays, the versioned change history, the access log and each node's audit chain.

They share `Base` with cloud/db/models.py; cloud/db/tables.py and the Alembic
environment import this module so the metadata is complete.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime

GROUP_RULES = ("agency", "zone", "floor", "role", "people")


class AccessDoor(Base):
    """A door the cloud manages rights for, controlled by `node_id` and/or by the node
    whose desired config lists its id."""

    __tablename__ = "access_doors"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    floor_id: Mapped[str | None] = mapped_column(ForeignKey("floors.id"))
    name: Mapped[str] = mapped_column(String(200))
    node_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    # Anti-passback (optional): a granted read moves a badge from zone_from into zone_to.
    zone_from: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    zone_to: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    anti_passback: Mapped[bool] = mapped_column(Boolean, default=False)
    anti_passback_reset_s: Mapped[int] = mapped_column(Integer, default=12 * 3600)


class AccessGroup(Base):
    """Who: everyone of an agency, a zone, a floor or a role, or a list of people."""

    __tablename__ = "access_groups"
    __table_args__ = (CheckConstraint(f"rule IN {GROUP_RULES!r}", name="ck_access_groups_rule"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(16))
    # The agency name, zone id, floor id or role; NULL for a list of people.
    value: Mapped[str | None] = mapped_column(String(200))
    # Person ids when rule == "people".
    members: Mapped[list[str]] = mapped_column(JSON, default=list)


class AccessGrant(Base):
    """A group may open a door in the windows of a weekly schedule (site-local time)."""

    __tablename__ = "access_grants"
    __table_args__ = (UniqueConstraint("group_id", "door_id", name="uq_access_grants_group_door"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    group_id: Mapped[str] = mapped_column(
        ForeignKey("access_groups.id", ondelete="CASCADE"), index=True
    )
    door_id: Mapped[str] = mapped_column(
        ForeignKey("access_doors.id", ondelete="CASCADE"), index=True
    )
    # [{"days": ["mon", ...], "start": "07:00", "end": "19:00"}, ...]
    schedule: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Holidays close the door to this grant unless it says otherwise (e.g. security staff).
    open_on_holidays: Mapped[bool] = mapped_column(Boolean, default=False)


class AccessHoliday(Base):
    """A day of the site's calendar on which grants do not open (unless they say so)."""

    __tablename__ = "access_holidays"

    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class AccessChange(Base):
    """One change of the access rights; its `version` is the rights' version after it."""

    __tablename__ = "access_changes"

    version: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    # The state after the change (None: deleted).
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AccessLogEntry(Base):
    """A door decision a node reported, with where it sits in the node's audit chain."""

    __tablename__ = "access_log"
    __table_args__ = (
        Index("ix_access_log_door_ts", "door", "ts"),
        Index("ix_access_log_person_ts", "person_id", "ts"),
        Index("ix_access_log_node_seq", "node", "audit_seq"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    node: Mapped[str] = mapped_column(String(ID_LENGTH))
    door: Mapped[str] = mapped_column(String(ID_LENGTH))
    badge: Mapped[str | None] = mapped_column(String(64))
    # The badge's holder when it arrived (NULL: unknown badge).
    person_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    granted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(128))
    ts: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ts_raw: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    audit_hash: Mapped[str] = mapped_column(String(64))
    # NULL: not checked yet (its predecessor has not arrived); True/False once checked.
    chain_ok: Mapped[bool | None] = mapped_column(Boolean)
    chain_problem: Mapped[str | None] = mapped_column(String(200))


class AccessChain(Base):
    """How far the cloud has verified a node's audit chain, and its first break if any."""

    __tablename__ = "access_chains"

    node: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    verified_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    verified_hash: Mapped[str] = mapped_column(String(64))
    # An unresolved break (alarm on the fleet view) until the security role clears it.
    broken_seq: Mapped[int | None] = mapped_column(BigInteger)
    broken_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    problem: Mapped[str | None] = mapped_column(String(200))
    # A gap: decisions after a missing one arrived; cleared when the gap fills.
    gap_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
