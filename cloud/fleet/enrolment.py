"""Enrolment of edge nodes: one-time tokens in, per-node broker credentials out.

An administrator or technician creates a token for a node; the node presents it
once (`ruang edge enroll`) and receives its broker username (its node id), a
fresh password and the edge settings chosen with the token. Only hashes are
stored: SHA-256 of the token (it is high-entropy, so no slow hash is needed) and
the Mosquitto PBKDF2 hash of the password (what the broker's password file needs).

The functions here run inside the caller's transaction; the routes in
`cloud.api.enrolment` hold the broker accounts' lock (cloud/fleet/broker_accounts.py)
around them and tell the broker (its files, or its dynamic-security plugin) before
committing, so a failed write leaves the token unused.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.models_fleet import EnrolmentToken, NodeCredential
from cloud.errors import Conflict, DomainError, Gone, Invalid, NotAuthenticated, NotFound
from cloud.fleet.broker_credentials import hash_password
from cloud.settings import CloudSettings
from ruang.contract import ID_PATTERN
from ruang.mqtt_url import split_broker_urls

TOKEN_BYTES = 32
PASSWORD_BYTES = 32
_ID_RE = re.compile(ID_PATTERN)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_node_id(prefix: str) -> str:
    # 6 hex digits: short enough to read off a label, 16 M values per prefix.
    return f"{prefix}-{secrets.token_hex(3)}"


def public_mqtt_url(settings: CloudSettings) -> str:
    """The broker URL handed to nodes; never the cloud's own credentials."""
    if settings.public_mqtt_url:
        return settings.public_mqtt_url
    # A cluster's nodes stay a comma-separated list, each without the login.
    return ",".join(_without_login(url) for url in split_broker_urls(settings.mqtt_url))


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class IssuedToken:
    token: str
    node_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Enrolment:
    node_id: str
    mqtt_url: str
    mqtt_username: str
    mqtt_password: str
    ca_cert_pem: str | None
    config: dict[str, Any]


async def create_token(
    conn: AsyncConnection,
    settings: CloudSettings,
    *,
    node_id: str | None,
    ttl_s: float,
    config: dict[str, Any],
    now: datetime | None = None,
    created_by: str | None = None,
) -> IssuedToken:
    now = now or datetime.now(UTC)
    node_id = node_id or new_node_id(settings.enrolment_node_prefix)
    if not _ID_RE.match(node_id):
        raise Invalid(f"{node_id!r} is not a valid node id", title="Invalid node id")
    if node_id == settings.cloud_mqtt_username:
        # The node would log in as the cloud and inherit its access to every topic.
        raise Invalid(f"{node_id!r} is the cloud's own broker account", title="Invalid node id")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = now + timedelta(seconds=ttl_s)
    await conn.execute(
        insert(EnrolmentToken).values(
            token_hash=token_hash(token),
            node_id=node_id,
            config=config,
            created_at=now,
            expires_at=expires_at,
            created_by=created_by,
        )
    )
    return IssuedToken(token=token, node_id=node_id, expires_at=expires_at)


async def _refusal(conn: AsyncConnection, hashed: str, now: datetime) -> DomainError:
    """Why a token could not be consumed: unknown (401), used or expired (410)."""
    row = (
        await conn.execute(
            select(
                EnrolmentToken.used_at, EnrolmentToken.expires_at, EnrolmentToken.revoked_at
            ).where(EnrolmentToken.token_hash == hashed)
        )
    ).one_or_none()
    if row is None:
        return NotAuthenticated(
            "no enrolment token matches; ask for a new one", title="Unknown enrolment token"
        )
    used_at, expires_at, revoked_at = row
    if revoked_at is not None:
        return Gone(
            f"this token was withdrawn at {revoked_at.isoformat()}; ask for a new one",
            title="Enrolment token withdrawn",
        )
    if used_at is not None:
        return Gone(
            f"this token was already used at {used_at.isoformat()}; a token enrols one node once",
            title="Enrolment token already used",
        )
    return Gone(f"this token expired at {expires_at.isoformat()}", title="Enrolment token expired")


async def enrol(
    conn: AsyncConnection,
    settings: CloudSettings,
    *,
    token: str,
    hardware_id: str | None,
    now: datetime | None = None,
) -> Enrolment:
    """Consumes `token` and issues the node's credential; raises DomainError if refused."""
    now = now or datetime.now(UTC)
    hashed = token_hash(token)
    # One conditional UPDATE is the single-use guarantee: of two racing
    # enrolments with the same token, exactly one sees a changed row.
    consumed = await conn.execute(
        update(EnrolmentToken)
        .where(
            EnrolmentToken.token_hash == hashed,
            EnrolmentToken.used_at.is_(None),
            EnrolmentToken.revoked_at.is_(None),
            EnrolmentToken.expires_at > now,
        )
        .values(used_at=now, used_by_hardware_id=hardware_id)
    )
    if consumed.rowcount != 1:
        raise await _refusal(conn, hashed, now)
    node_id, config = (
        await conn.execute(
            select(EnrolmentToken.node_id, EnrolmentToken.config).where(
                EnrolmentToken.token_hash == hashed
            )
        )
    ).one()
    # Re-enrolling a node (a reinstalled Pi) replaces its password: the old one
    # may sit on a discarded SD card.
    await _revoke(conn, node_id, now)
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    await conn.execute(
        insert(NodeCredential).values(
            node_id=node_id,
            password_hash=hash_password(password),
            hardware_id=hardware_id,
            created_at=now,
            revoked=False,
        )
    )
    ca_pem = settings.mqtt_ca_file.read_text() if settings.mqtt_ca_file else None
    return Enrolment(
        node_id=node_id,
        mqtt_url=public_mqtt_url(settings),
        mqtt_username=node_id,
        mqtt_password=password,
        ca_cert_pem=ca_pem,
        config=dict(config or {}),
    )


async def _revoke(conn: AsyncConnection, node_id: str, now: datetime) -> int:
    result = await conn.execute(
        update(NodeCredential)
        .where(NodeCredential.node_id == node_id, NodeCredential.revoked.is_(False))
        .values(revoked=True, revoked_at=now)
    )
    return int(result.rowcount)


async def revoke(conn: AsyncConnection, node_id: str, now: datetime | None = None) -> None:
    """Revokes the node's live credential; 404 when it has none."""
    if not await _revoke(conn, node_id, now or datetime.now(UTC)):
        raise NotFound(
            f"node {node_id!r} has no active broker credential", title="No active credential"
        )


# --- the admin console's list of tokens -----------------------------------------------------

REF_LENGTH = 16  # hex digits of the token's hash that name it (the token itself is never kept)


def token_state(row: Any, now: datetime) -> str:
    if row.revoked_at is not None:
        return "withdrawn"
    if row.used_at is not None:
        return "used"
    return "expired" if row.expires_at <= now else "open"


async def list_tokens(conn: AsyncConnection, limit: int = 200) -> list[Any]:
    """Tokens newest first, without their hashes' secrets (a hash prefix names each)."""
    rows = await conn.execute(
        select(
            EnrolmentToken.token_hash,
            EnrolmentToken.node_id,
            EnrolmentToken.created_at,
            EnrolmentToken.expires_at,
            EnrolmentToken.used_at,
            EnrolmentToken.revoked_at,
            EnrolmentToken.created_by,
        )
        .order_by(EnrolmentToken.created_at.desc())
        .limit(limit)
    )
    return list(rows)


async def token_by_ref(conn: AsyncConnection, ref: str) -> Any:
    """The token named by `ref` (its hash's first hex digits); 404 when none or ambiguous."""
    if not re.fullmatch(f"[0-9a-f]{{{REF_LENGTH}}}", ref):
        raise NotFound(f"enrolment token {ref!r} is unknown", title="Enrolment token not found")
    rows = (
        await conn.execute(select(EnrolmentToken).where(EnrolmentToken.token_hash.startswith(ref)))
    ).all()
    if len(rows) != 1:
        raise NotFound(f"enrolment token {ref!r} is unknown", title="Enrolment token not found")
    return rows[0]


async def withdraw(conn: AsyncConnection, token_hash_: str, now: datetime | None = None) -> None:
    """Withdraws an unused token; used or already withdrawn ones stay as they are (409)."""
    done = await conn.execute(
        update(EnrolmentToken)
        .where(
            EnrolmentToken.token_hash == token_hash_,
            EnrolmentToken.used_at.is_(None),
            EnrolmentToken.revoked_at.is_(None),
        )
        .values(revoked_at=now or datetime.now(UTC))
    )
    if done.rowcount != 1:
        raise Conflict("this token was already used or withdrawn", title="Token not open")
