"""Per-subsystem watchdogs of the edge agent, and the systemd watchdog as a last resort.

Each subsystem (every device reader, the uplink, the outbox, the health loop)
registers a named heartbeat with the staleness it is allowed. Its loop calls
`beat()` every turn. A device driver does not need to know its heartbeat: the
watchdog starts the driver's task with the heartbeat in a context variable, and
the driver's loops call the module-level `beat()`, which finds it there (tasks
the driver starts inherit it).

Every `interval_s` the watchdog looks at all heartbeats:

* a stale heartbeat of a *restartable* subsystem (one the watchdog started with
  `supervise`) gets its task cancelled and started again, after a jittered
  backoff that grows while restarts do not help and resets once it beats again;
* every stale heartbeat is an alarm for node health ("watchdog: uplink stalled
  42 s, restarted"); an alarm stays visible for `alarm_hold_s` after the
  subsystem recovered, so a technician looking later still sees it happened;
* ``WATCHDOG=1`` goes to systemd only while no subsystem has been stale for
  longer than `hard_limit_s`. If restarting a subsystem does not bring it back
  (or it cannot be restarted, like the outbox on a failing disk), systemd's own
  watchdog then restarts the whole agent. A blocked event loop stops the
  notifications too, since this loop runs on it.

Times are monotonic; all intervals are parameters so tests can run in
fractions of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from ruang.backoff import Backoff
from ruang.tasks import cancel_and_wait

from . import health as node_health

log = logging.getLogger(__name__)

TaskFactory = Callable[[], Coroutine[Any, Any, None]]

_current: contextvars.ContextVar[Heartbeat | None] = contextvars.ContextVar(
    "ruang_watchdog_heartbeat", default=None
)


def beat() -> None:
    """Beats the heartbeat of the subsystem whose task this is; a no-op outside a watchdog."""
    heartbeat = _current.get()
    if heartbeat is not None:
        heartbeat.beat()


@dataclass
class Heartbeat:
    """One subsystem's heartbeat, as the watchdog tracks it."""

    name: str
    stale_after_s: float
    clock: Callable[[], float] = time.monotonic
    last_beat: float = 0.0
    restarts: int = 0
    # A problem the subsystem reports itself (the outbox probe's error): an alarm
    # even while it still beats.
    error: str | None = None
    factory: TaskFactory | None = None
    task: asyncio.Task[None] | None = None
    next_restart_at: float = 0.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    # The last incident, kept for the alarm hold time after recovery.
    incident: str | None = None
    incident_at: float = 0.0
    # When the current stall began; cleared only once the subsystem has beaten for a
    # while after its last (re)start, so one that beats once and stalls again at
    # every restart still counts as stalled towards the hard limit.
    stalled_since: float | None = None
    started_at: float = 0.0
    restarting: bool = False

    def __post_init__(self) -> None:
        self.last_beat = self.clock()

    def beat(self) -> None:
        self.last_beat = self.clock()

    def age(self, now: float) -> float:
        return now - self.last_beat

    def stale(self, now: float) -> bool:
        return self.age(now) > self.stale_after_s

    @property
    def restartable(self) -> bool:
        return self.factory is not None


class Watchdog:
    """The table of heartbeats, their checks and the systemd notifications."""

    def __init__(
        self,
        *,
        interval_s: float = 1.0,
        hard_limit_s: float = 300.0,
        alarm_hold_s: float = 600.0,
        backoff: Callable[[], Backoff] | None = None,
        clock: Callable[[], float] = time.monotonic,
        notify: Callable[[str], bool] = node_health.sd_notify,
    ) -> None:
        self.interval_s = interval_s
        self.hard_limit_s = hard_limit_s
        self.alarm_hold_s = alarm_hold_s
        self._backoff = backoff or (lambda: Backoff(base=1.0, cap=60.0))
        self._clock = clock
        self._notify = notify
        self.heartbeats: dict[str, Heartbeat] = {}
        self.notifications = 0
        self.withheld = 0
        # The first exception a supervised task died of: `run` raises it, so a bug
        # still takes the agent down as it did before the watchdog owned the task.
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()

    # --- registering ----------------------------------------------------------------

    def register(self, name: str, stale_after_s: float) -> Heartbeat:
        """A heartbeat the subsystem beats itself; the watchdog can only raise alarms for it."""
        heartbeat = Heartbeat(name, stale_after_s, clock=self._clock, backoff=self._backoff())
        self.heartbeats[name] = heartbeat
        return heartbeat

    def supervise(self, name: str, factory: TaskFactory, stale_after_s: float) -> Heartbeat:
        """Starts `factory()` as a task the watchdog restarts when its heartbeat goes stale."""
        heartbeat = self.register(name, stale_after_s)
        heartbeat.factory = factory
        self._start(heartbeat)
        return heartbeat

    def unregister(self, name: str) -> None:
        """Forgets a subsystem (a desk removed by remote config) and stops its task."""
        heartbeat = self.heartbeats.pop(name, None)
        if heartbeat is not None and heartbeat.task is not None:
            heartbeat.task.cancel()

    def _start(self, heartbeat: Heartbeat) -> None:
        assert heartbeat.factory is not None
        # The heartbeat rides in the task's context: the driver's `beat()` finds it.
        context = contextvars.copy_context()
        context.run(_current.set, heartbeat)
        task = asyncio.get_running_loop().create_task(
            heartbeat.factory(), name=heartbeat.name, context=context
        )
        heartbeat.task = task
        heartbeat.started_at = self._clock()
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            # It finished on purpose (a driver with nothing to do): not a stall.
            for name, heartbeat in list(self.heartbeats.items()):
                if heartbeat.task is task and not heartbeat.restarting:
                    del self.heartbeats[name]
        elif self._failure is None:
            self._failure = exc
            self._failed.set()

    # --- checking -------------------------------------------------------------------

    def check(self) -> bool:
        """One round: restarts what is stale and restartable; True if systemd may be told."""
        now = self._clock()
        healthy = True
        for heartbeat in list(self.heartbeats.values()):
            if not heartbeat.stale(now):
                if heartbeat.stalled_since is not None and (
                    heartbeat.restarts == 0
                    or heartbeat.last_beat - heartbeat.started_at > heartbeat.stale_after_s / 2
                ):
                    heartbeat.stalled_since = None
                    # It works again: the next stall starts from the shortest backoff.
                    heartbeat.backoff.reset()
                    log.warning("watchdog: %s beats again", heartbeat.name)
            else:
                self._stale(heartbeat, now)
            if (
                heartbeat.stalled_since is not None
                and now - heartbeat.stalled_since > self.hard_limit_s
            ):
                healthy = False
        return healthy

    def _stale(self, heartbeat: Heartbeat, now: float) -> None:
        first = heartbeat.stalled_since is None
        if heartbeat.stalled_since is None:
            heartbeat.stalled_since = heartbeat.last_beat + heartbeat.stale_after_s
        # Since the stall began, across restarts that did not help.
        stalled_for = now - heartbeat.stalled_since + heartbeat.stale_after_s
        if heartbeat.restartable:
            if not heartbeat.restarting and now >= heartbeat.next_restart_at:
                self._restart(heartbeat, stalled_for, now)
        else:
            # Nothing to restart (the outbox): the alarm says how long it has been.
            heartbeat.incident = f"watchdog: {heartbeat.name} stalled {stalled_for:.0f} s"
            heartbeat.incident_at = now
            if first:
                log.error("%s", heartbeat.incident)

    def _restart(self, heartbeat: Heartbeat, age: float, now: float) -> None:
        heartbeat.restarts += 1
        delay = heartbeat.backoff.next_delay()
        # A fresh task gets a whole staleness period (plus the backoff) before the next try.
        heartbeat.next_restart_at = now + heartbeat.stale_after_s + delay
        heartbeat.incident = f"watchdog: {heartbeat.name} stalled {age:.0f} s, restarted"
        heartbeat.incident_at = now
        log.error("%s (restart %d, next try no sooner than %.1f s)", heartbeat.incident,
                  heartbeat.restarts, heartbeat.stale_after_s + delay)  # fmt: skip
        old = heartbeat.task
        if old is not None:
            old.cancel()
        heartbeat.restarting = True
        # Started after the old task has really ended (its finally blocks closed the
        # port or the connection), and after the backoff: a subsystem that stalls again
        # at once must not spin.
        asyncio.get_running_loop().create_task(
            self._restart_after(heartbeat, old, delay), name=f"watchdog-restart:{heartbeat.name}"
        )

    async def _restart_after(
        self, heartbeat: Heartbeat, old: asyncio.Task[None] | None, delay: float
    ) -> None:
        if old is not None:
            await cancel_and_wait(old)
        await asyncio.sleep(delay)
        heartbeat.restarting = False
        if self.heartbeats.get(heartbeat.name) is heartbeat:
            self._start(heartbeat)

    async def run(self) -> None:
        """Checks every `interval_s` and feeds systemd while allowed; stops supervised tasks."""
        try:
            while True:
                if self.check():
                    self._notify("WATCHDOG=1")
                    self.notifications += 1
                else:
                    self.withheld += 1
                    if self.withheld == 1 or self.withheld % 60 == 0:
                        log.critical("watchdog: a subsystem is stalled past the hard limit "
                                     "(%.0f s); no longer feeding the systemd watchdog",
                                     self.hard_limit_s)  # fmt: skip
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval_s):
                        await self._failed.wait()
                if self._failure is not None:
                    raise self._failure
        finally:
            tasks = [h.task for h in self.heartbeats.values() if h.task is not None]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5.0)

    # --- reporting ------------------------------------------------------------------

    def alarms(self) -> tuple[str, ...]:
        now = self._clock()
        out: list[str] = []
        for heartbeat in self.heartbeats.values():
            if heartbeat.error:
                out.append(f"watchdog: {heartbeat.name}: {heartbeat.error}")
            if heartbeat.stale(now) and heartbeat.incident is None:
                out.append(f"watchdog: {heartbeat.name} stalled {heartbeat.age(now):.0f} s")
            elif heartbeat.incident is not None and (
                heartbeat.stale(now) or now - heartbeat.incident_at <= self.alarm_hold_s
            ):
                out.append(heartbeat.incident)
        return tuple(out)

    def table(self) -> list[dict[str, Any]]:
        """One row per subsystem, for status.json and `ruang edge status`."""
        now = self._clock()
        return [
            {
                "subsystem": h.name,
                "state": (
                    "stalled"
                    if h.stale(now) or h.stalled_since is not None
                    else ("error" if h.error else "ok")
                ),
                "last_beat_s": round(h.age(now), 1),
                "stale_after_s": h.stale_after_s,
                "restarts": h.restarts,
                "restartable": h.restartable,
                "detail": h.error or h.incident,
            }
            for h in self.heartbeats.values()
        ]


class _Probed(Protocol):
    def probe(self, timeout_s: float = ...) -> None: ...


async def outbox_probe(
    outbox: _Probed, heartbeat: Heartbeat, *, interval_s: float, timeout_s: float
) -> None:
    """Runs the outbox's read+write probe every `interval_s`; beats only when it succeeds.

    The probe runs on a worker thread with its own SQLite connection, so a disk
    that hangs cannot block the event loop; a probe still running from last time
    is waited for, never doubled. Its error (locked, I/O error, timed out) is the
    heartbeat's `error`, which node health shows as an alarm.
    """
    running: asyncio.Future[None] | None = None
    while True:
        if running is None or running.done():
            # Half the timeout for SQLite's own lock wait: "database is locked" says more
            # than "timed out" when another process holds the file.
            running = asyncio.ensure_future(asyncio.to_thread(outbox.probe, timeout_s / 2))
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(running)
        except TimeoutError:
            heartbeat.error = f"probe timed out after {timeout_s:g} s"
        except sqlite3.Error as exc:
            heartbeat.error = f"probe failed: {exc}"
        else:
            if heartbeat.error is not None:
                log.warning("watchdog: outbox probe works again (was: %s)", heartbeat.error)
            heartbeat.error = None
            heartbeat.beat()
        if heartbeat.error is not None:
            log.error("watchdog: outbox %s", heartbeat.error)
        await asyncio.sleep(interval_s)
