"""The node's doors: their badge allow-list and the audit log of their decisions.

Door controllers (edge/devices/door.py) decide and write every decision to the
audit log (edge/devices/audit_log.py) before publishing it. This part keeps what
they decide from in step with the cloud's signed snapshot: the door rights
(per badge, the windows it opens each cloud-managed door in; docs/access-control.md)
and, for doors the cloud does not manage, the badge allow-list (unless a file
allow-list is configured, the documented fallback), prunes the audit log as the cloud acknowledges
decisions (`audit_ack`), and re-sends, at start, every decision the cloud has
not acknowledged yet.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ruang import contract

from .devices import Publish
from .devices.access_policy import AccessPolicy, AllowList, BadgeEntry, load_allow_list
from .devices.audit_log import AuditLog
from .devices.door import audit_message_id
from .devices.door_rights import DoorRights
from .settings import EdgeSettings
from .snapshot import SnapshotStore


class Doors:
    """Allow-list and audit log of the node's doors; both None on a node without doors."""

    def __init__(
        self,
        node_id: str,
        publish: Publish,
        settings: Callable[[], EdgeSettings],
        snapshots: SnapshotStore,
    ) -> None:
        self.node = node_id
        self._publish = publish
        self._settings = settings
        self._snapshots = snapshots
        self.audit: AuditLog | None = None
        self.policy: AccessPolicy | None = None
        # Sequence numbers the cloud has acknowledged past the pruned prefix.
        self._acked: set[int] = set()
        s = settings()
        if s.doors:
            s.state_dir.mkdir(parents=True, exist_ok=True)
            self.audit = AuditLog(s.state_dir / "door_audit.sqlite3")
            allow = (
                load_allow_list(s.allow_list_file)
                if s.allow_list_file
                else self._allow_list_from_snapshot() or AllowList(version=0)
            )
            self.policy = AccessPolicy(allow, {}, tz=s.building_tz)
            self._install_rights()

    def snapshot_applied(self) -> None:
        """A new snapshot is in: doors follow its rights, and its badges unless a file rules."""
        if self.policy is None:
            return
        self._install_rights()
        if not self._settings().allow_list_file:
            allow = self._allow_list_from_snapshot()
            if allow is not None:
                self.policy.replace_allow_list(allow)

    def _install_rights(self) -> None:
        view = self._snapshots.current
        if self.policy is not None and view is not None:
            self.policy.replace_rights(DoorRights.of(view.body))

    def _allow_list_from_snapshot(self) -> AllowList | None:
        """Doors use the same badge allow-list as desks: the cloud's snapshot."""
        view = self._snapshots.current
        if view is None:
            return None
        return AllowList(
            version=view.version,
            entries=tuple(
                BadgeEntry(
                    badge=b.badge,
                    person=b.person,
                    valid_until=(
                        datetime.fromtimestamp(b.valid_until, UTC) if b.valid_until else None
                    ),
                )
                for b in view.body.badges
            ),
        )

    def acknowledged(self, seqs: tuple[int, ...]) -> None:
        """Prunes the audit log up to the longest run of decisions the cloud has committed."""
        if self.audit is None:
            return
        self._acked.update(seqs)
        upto = None
        for entry in self.audit.pending():
            if entry.seq not in self._acked:
                break
            upto = entry.seq
        if upto is not None:
            self.audit.mark_acknowledged(upto)
            self._acked = {s for s in self._acked if s > upto}

    def resend_unacknowledged(self) -> None:
        # Same message ids as the first time: the cloud counts each decision once.
        if self.audit is None:
            return
        for entry in self.audit.pending():
            self._publish(
                contract.AccessDecision(
                    node=self.node, id=audit_message_id(entry.hash), ts=entry.ts,
                    door=entry.door, badge=entry.badge, granted=entry.granted,
                    reason=entry.reason[:128], audit_seq=entry.seq, audit_hash=entry.hash,
                )
            )  # fmt: skip
