"""Mosquitto's password and ACL files, written by the cloud from its credential table.

The `files` backend of cloud.fleet.broker_accounts, for a broker on the cloud's
own machine (`dynsec`, cloud.fleet.broker_dynsec, manages a broker anywhere over
MQTT). The cloud is the only place broker accounts are created or revoked: after
each enrolment or revocation it rewrites both files from the database (never
edits them in place), replaces them atomically, and sends Mosquitto SIGHUP so it
re-reads them. Passwords are hashed in the format `mosquitto_passwd` writes for
Mosquitto 2 (`$7$`: PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt), so the
cloud needs no Mosquitto binary.

Every node may write only below its own `ruang/v1/nodes/<its id>/` (state,
events, telemetry, backlog) and read only its own commands; the cloud's own
account may read and write the whole tree.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import signal
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.db.models_fleet import NodeCredential
from cloud.settings import CloudSettings
from ruang.contract import TOPIC_ROOT

log = logging.getLogger(__name__)

PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
_SHA512_BYTES = 64
# The broker reads these files as its own user; the group bit lets a deployment
# give Mosquitto's group read access without making hashes world-readable.
FILE_MODE = 0o640

# What a node may do, with %u the MQTT username (= the node id). Kept next to the
# topic tree of ruang.contract: a new channel there needs a line here.
NODE_WRITE = ("state", "events/#", "telemetry/#", "backlog/#")
NODE_READ = ("commands/#",)


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """The `$7$` hash Mosquitto 2 checks a password against (as `mosquitto_passwd` writes it)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _SHA512_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """True when `password` matches a `$7$` hash (ours or one `mosquitto_passwd` wrote)."""
    try:
        _, kind, iterations, salt_b64, digest_b64 = hashed.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        rounds = int(iterations)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds, len(expected))
    return hmac.compare_digest(digest, expected)


def render_password_file(entries: list[tuple[str, str]]) -> str:
    """`user:hash` lines; `entries` are (username, already-hashed password)."""
    for user, _ in entries:
        # A colon or newline would split the line differently when Mosquitto reads it.
        if not user or any(c in user for c in ":\n\r"):
            raise ValueError(f"{user!r} cannot be a Mosquitto username")
    return "".join(f"{user}:{hashed}\n" for user, hashed in entries)


def render_acl_file(cloud_username: str) -> str:
    lines = [
        "# Written by the Ruang cloud (cloud/fleet/broker_credentials.py);"
        " local edits are overwritten.",
        "# Patterns apply to every user; %u is the username, which is the node id.",
    ]
    lines += [f"pattern write {TOPIC_ROOT}/nodes/%u/{sub}" for sub in NODE_WRITE]
    lines += [f"pattern read {TOPIC_ROOT}/nodes/%u/{sub}" for sub in NODE_READ]
    lines += ["", f"user {cloud_username}", f"topic readwrite {TOPIC_ROOT}/#"]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Replaces `path` with `text` so the broker never reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def signal_reload(pid_file: Path | None) -> bool:
    """Sends SIGHUP to the broker named by `pid_file`; False (and a warning) if that fails.

    A failed signal does not undo anything: the files are already right and the
    broker picks them up on its next reload or restart.
    """
    if pid_file is None:
        return False
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        log.warning("could not make Mosquitto reload its auth files via %s: %s", pid_file, exc)
        return False
    return True


class BrokerFiles:
    """Keeps the broker's password and ACL files in step with `node_credentials`; a
    BrokerAccounts (cloud.fleet.broker_accounts).

    `lock` serialises the whole "change credentials, rewrite files, commit" step
    of this process, so two enrolments cannot interleave and leave a file that
    misses one of them. Only one cloud process may manage the broker's files.
    """

    def __init__(self, settings: CloudSettings) -> None:
        self._settings = settings
        self.lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self._settings.mosquitto_password_file is not None

    async def write(self, conn: AsyncConnection) -> None:
        """Rewrites both files from the credentials `conn` sees (its open transaction too)."""
        settings = self._settings
        if settings.mosquitto_password_file is None:
            return
        rows = await conn.execute(
            select(NodeCredential.node_id, NodeCredential.password_hash)
            .where(NodeCredential.revoked.is_(False))
            .order_by(NodeCredential.node_id)
        )
        entries = [(node, hashed) for node, hashed in rows]
        if settings.cloud_mqtt_password is not None:
            cloud_hash = hash_password(settings.cloud_mqtt_password.get_secret_value())
            entries.insert(0, (settings.cloud_mqtt_username, cloud_hash))
        write_atomic(settings.mosquitto_password_file, render_password_file(entries))
        if settings.mosquitto_acl_file is not None:
            write_atomic(settings.mosquitto_acl_file, render_acl_file(settings.cloud_mqtt_username))

    def reload(self) -> bool:
        if not self.enabled:
            return False
        return signal_reload(self._settings.mosquitto_pid_file)

    async def sync(self, conn: AsyncConnection) -> None:
        """Writes the files and reloads the broker; for start-up and repairs."""
        async with self.lock:
            await self.write(conn)
            self.reload()

    # --- as a BrokerAccounts -----------------------------------------------------------------

    async def node_enrolled(self, conn: AsyncConnection, node_id: str, password: str) -> None:
        await self.write(conn)  # the hash is already in `conn`'s transaction

    async def node_revoked(self, conn: AsyncConnection, node_id: str) -> None:
        await self.write(conn)

    def committed(self) -> None:
        self.reload()

    async def start(self, engine: AsyncEngine) -> None:
        # Mosquitto refuses to start without its password file, and the cloud's own
        # account lives in it: write the files from the database before serving.
        if self.enabled:
            async with engine.begin() as conn:
                await self.sync(conn)

    async def stop(self) -> None:
        """Nothing runs in the background."""
