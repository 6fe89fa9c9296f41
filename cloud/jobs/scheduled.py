"""The jobs that must run in exactly one process: built fresh for each term of leadership.

Auto-release, check-in and seat reminders, room and seat no-shows, snapshot
publishing, webhook and notification dispatch, and the visitor, audit-log and
raw-record (cloud/privacy/retention.py) purges. With `role=all` the one process
starts them at once; with `role=jobs` the elected leader does
(cloud/jobs/leader.py) and stops them when it loses the lock. The snapshot
publisher lives across terms (it keeps the dirty marks the signal bus brings
while standing by) and is told on election that every node is due, so a new
leader republishes what a dying one may have left half done.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.admin.audit import AuditRetention
from cloud.bookings.autorelease import AutoReleaser
from cloud.bookings.reminders import CheckinReminder
from cloud.bookings.store import BookingStore
from cloud.fleet.snapshots import SnapshotPublisher
from cloud.integrations.webhooks import WebhookDispatcher
from cloud.live.hub import DeskChanges
from cloud.notifications.dispatcher import NotificationDispatcher
from cloud.privacy.retention import RetentionPurge
from cloud.rooms.noshow import RoomNoShowJob
from cloud.settings import CloudSettings
from cloud.transport.noshow import SeatJob
from cloud.transport.seat_notices import SeatReminder
from cloud.visitors.retention import VisitPurger

log = logging.getLogger(__name__)


class _Job(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...


class JobSet:
    """Starts and stops the leader-only jobs together (see the module docstring)."""

    def __init__(
        self,
        settings: CloudSettings,
        engine: AsyncEngine,
        store: BookingStore,
        snapshots: SnapshotPublisher,
        desk_changes: DeskChanges,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._store = store
        self.snapshots = snapshots
        self._desk_changes = desk_changes
        self._running: list[_Job] = []
        # The current term's dispatchers (tests and the app state read them).
        self.webhooks: WebhookDispatcher | None = None
        self.notifications: NotificationDispatcher | None = None

    @property
    def running(self) -> bool:
        return bool(self._running)

    def _build(self) -> list[_Job]:
        settings, store = self._settings, self._store
        interval = settings.autorelease_interval_s
        self.webhooks = WebhookDispatcher(settings, self._engine)
        self.notifications = NotificationDispatcher(settings, self._engine)
        return [
            self.webhooks,
            self.notifications,
            self.snapshots,
            AutoReleaser(store, interval, self._desk_changes),
            CheckinReminder(
                store, interval, timedelta(minutes=settings.booking_reminder_lead_min)
            ),
            VisitPurger(
                self._engine, settings.visitor_retention_days, settings.visitor_purge_interval_s
            ),
            RoomNoShowJob(store, interval),
            # Shuttle seats not boarded by departure go back to the trip and its waitlist.
            SeatJob(
                store, settings.seat_job_interval_s,
                timedelta(minutes=settings.seat_noshow_grace_min),
            ),
            AuditRetention(
                self._engine, settings.audit_retention_days, settings.audit_purge_interval_s
            ),
            SeatReminder(
                store, settings.seat_job_interval_s,
                timedelta(minutes=settings.seat_reminder_lead_min),
            ),
            RetentionPurge(self._engine, settings),
        ]  # fmt: skip

    async def start(self) -> None:
        """Builds this term's jobs and starts them; every node's snapshot is due."""
        if self._running:
            return
        self.snapshots.mark_dirty()
        for job in self._build():
            job.start()
            self._running.append(job)

    async def stop(self) -> None:
        """Stops what was started, in reverse: the jobs that mark snapshots before the publisher."""
        running, self._running = self._running, []
        for job in reversed(running):
            try:
                await job.stop()
            except Exception:  # the others must still stop
                log.exception("stopping job %r failed", job)
