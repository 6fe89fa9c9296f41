"""ORM models of the edge fleet: enrolment, node credentials, remote config and health.

They share `Base` (hence one metadata) with cloud/db/models.py; cloud/db/tables.py
and the Alembic environment import this module so the metadata is complete.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime


class EnrolmentToken(Base):
    """A one-time enrolment token (0003); only its SHA-256 is kept, never the token."""

    __tablename__ = "enrolment_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    # Edge settings handed to the node when it enrols (desk units and so on).
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    used_by_hardware_id: Mapped[str | None] = mapped_column(String(128))
    # Admin console (0024): who created it, and when it was withdrawn before use.
    created_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NodeCredential(Base):
    """A node's broker password (0003), as the Mosquitto PBKDF2 hash it is checked against.

    At most one row per node is unrevoked; re-enrolling revokes the older one.
    """

    __tablename__ = "node_credentials"
    __table_args__ = (
        Index(
            "uq_node_credentials_active",
            "node_id",
            unique=True,
            postgresql_where=text("NOT revoked"),
            sqlite_where=text("NOT revoked"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    node_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    hardware_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NodeConfig(Base):
    """The config the cloud wants a node to run (0006), pushed retained as `commands/config`."""

    __tablename__ = "node_configs"

    node_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeviceStatus(Base):
    """The latest DeviceHealth of each device attached to a node (0007)."""

    __tablename__ = "device_status"

    node_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    device: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    online: Mapped[bool] = mapped_column(Boolean)
    rejected_frames: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_reading_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    battery_pct: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(String(128))
    # Cloud receive time of the report, so a stale row can be told from a fresh one.
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class NodeHealthSample(Base):
    """Node health over time for the fleet graphs (0007): thinned and pruned by ingestion.

    `ts` is the cloud receive time, not the edge clock: the history must stay
    ordered and prunable even when a node's clock is wrong.
    """

    __tablename__ = "node_health_samples"
    __table_args__ = (
        Index("ix_node_health_samples_node_ts", "node_id", "ts"),
        Index("ix_node_health_samples_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    cpu_pct: Mapped[float | None] = mapped_column(Float)
    rss_bytes: Mapped[int | None] = mapped_column(BigInteger)
    mem_available_bytes: Mapped[int | None] = mapped_column(BigInteger)
    disk_free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    outbox_depth: Mapped[int | None] = mapped_column(Integer)
    clock_offset_s: Mapped[float | None] = mapped_column(Float)
