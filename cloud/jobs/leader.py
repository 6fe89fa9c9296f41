"""Leader election on PostgreSQL: the process holding one advisory lock runs the jobs.

Every `jobs` process opens a connection of its own (cloud/db/pg_direct.py) and
asks `pg_try_advisory_lock(JOBS_LOCK_KEY)` every `retry_s` (jittered). The one
that gets it is the leader: `on_elected` starts the jobs. The lock belongs to the
database session, so it is freed by PostgreSQL itself when the leader's
connection ends: a process that crashes or is SIGKILLed loses its socket, the
server ends the session, and a standby gets the lock on its next try (fail-over
in about `retry_s`, well under 10 s). A stopping leader closes its connection
the same way, after its jobs have stopped.

The leader checks its connection every `probe_s`; when the check fails (the
database restarted or the network broke) it stops its jobs (`on_deposed`) before
trying again, because the server may already have ended the session and given
the lock to a standby. Between the server ending the session and that check
failing, both may run jobs for a few seconds (`probe_s` plus the probe's
timeout): rare (the server must drop a session whose process still runs), and
a webhook or email due in that window may then go out twice.

Who leads is visible from outside: `GET /role` of each process, and in
PostgreSQL (`pg_locks` joined to `pg_stat_activity`, application name
`<client id>-jobs-<worker>-leader`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from cloud.db.pg_direct import connect
from ruang.backoff import Backoff
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# One advisory lock key for the jobs of a database ("RuangJob" read as 8 ASCII bytes).
JOBS_LOCK_KEY = int.from_bytes(b"RuangJob", "big")
RETRY_S = 1.0
PROBE_S = 1.0
PROBE_TIMEOUT_S = 5.0


class LeaderElection:
    """Keeps trying to lead; runs `on_elected` when it does and `on_deposed` when it stops."""

    def __init__(
        self,
        database_url: str,
        *,
        name: str,
        on_elected: Callable[[], Awaitable[None]],
        on_deposed: Callable[[], Awaitable[None]],
        retry_s: float = RETRY_S,
        probe_s: float = PROBE_S,
        key: int = JOBS_LOCK_KEY,
    ) -> None:
        self._url = database_url
        self.name = name
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._retry_s = retry_s
        self._probe_s = probe_s
        self._key = key
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self.is_leader = False
        self.terms = 0  # times this process became leader

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ruang-jobs-leader")

    async def stop(self) -> None:
        """Stops the jobs if leading, then closes the connection (freeing the lock)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        # Here rather than in the task: stopping the jobs may take longer than
        # cancel_and_wait's patience, and must not itself be cancelled.
        await self._depose()
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            # Ends the session: the server frees the lock at once.
            self._conn.terminate()
            self._conn = None

    async def _loop(self) -> None:
        backoff = Backoff(base=0.5, cap=5.0)
        while True:
            try:
                self._conn = conn = await connect(self._url, f"{self.name}-leader")
                backoff.reset()
                await self._acquire(conn)
                await self._lead(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("jobs leader election: %s; trying again", exc)
            await self._depose()
            self._close()
            await asyncio.sleep(backoff.next_delay())

    async def _acquire(self, conn: Any) -> None:
        """Returns once this session holds the lock; asks every `retry_s`, jittered."""
        while True:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                return
            await asyncio.sleep(self._retry_s * random.uniform(0.75, 1.25))

    async def _lead(self, conn: Any) -> None:
        """Runs the jobs while the connection answers; returns never, raises when it fails."""
        self.is_leader = True
        self.terms += 1
        log.info("%s leads the jobs (term %d)", self.name, self.terms)
        await self._on_elected()
        while True:
            await asyncio.sleep(self._probe_s)
            # Generous: a busy database answering late is no reason to hand over.
            async with asyncio.timeout(max(self._probe_s * 3, PROBE_TIMEOUT_S)):
                await conn.fetchval("SELECT 1")

    async def _depose(self) -> None:
        if not self.is_leader:
            return
        self.is_leader = False
        log.info("%s no longer leads the jobs", self.name)
        try:
            await self._on_deposed()
        except Exception:
            log.exception("stopping the jobs failed")
