"""The cloud's commands to this node, each handed to the part that owns it.

The uplink (edge/uplink.py) decodes and validates every command and applies
the two that are about its own stream itself (`event_ack`, `backlog_rate`).
Everything else arrives here: `led` goes to a desk's unit, `snapshot` is
verified and installed for desks, doors and the vehicle, `config` goes to the remote config
(edge/config_apply.py), `audit_ack` prunes the door audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from firmware_bridge.deskunit import LedPattern, LedSet
from ruang import contract

from .config_apply import ConfigApplier, ReconfigureDesks
from .desks import Desks
from .devices import Publish
from .doors import Doors
from .snapshot import SnapshotError, SnapshotStore
from .vehicle import Vehicle

log = logging.getLogger(__name__)

_PATTERNS = {
    "off": LedPattern.OFF,
    "solid": LedPattern.SOLID,
    "blink": LedPattern.BLINK,
    "pulse": LedPattern.PULSE,
}


class Commands:
    """Dispatches one decoded cloud command; see the module docstring."""

    def __init__(
        self,
        *,
        desks: Desks,
        doors: Doors,
        snapshots: SnapshotStore,
        config: ConfigApplier,
        publish: Publish,
        reconfigure_desks: ReconfigureDesks,
        rejected: Callable[[], None],
        vehicle: Vehicle | None = None,
    ) -> None:
        self._desks = desks
        self._doors = doors
        self._vehicle = vehicle
        self._snapshots = snapshots
        self._config = config
        self._publish = publish
        self._reconfigure_desks = reconfigure_desks
        # Counts a command this node cannot act on (the uplink's rejected_commands).
        self._rejected = rejected

    async def handle(self, command: contract.Message) -> None:
        if isinstance(command, contract.LedCommand):
            self._led(command)
        elif isinstance(command, contract.Snapshot):
            self._apply_snapshot(command)
        elif isinstance(command, contract.AuditAck):
            self._doors.acknowledged(command.seqs)
        elif isinstance(command, contract.ConfigPush):
            self._config.apply(command, self._publish, self._reconfigure_desks)
        else:
            log.warning("unsupported command %s", type(command).__name__)

    def _led(self, command: contract.LedCommand) -> None:
        if command.desk not in self._desks.drivers:
            log.warning("LED command for desk %s, which this node does not serve", command.desk)
            self._rejected()
            return
        self._desks.led(
            command.desk,
            LedSet(
                r=command.r,
                g=command.g,
                b=command.b,
                pattern=_PATTERNS[command.pattern],
                duration_s=command.duration_s,
            ),
        )

    def _apply_snapshot(self, snapshot: contract.Snapshot) -> None:
        try:
            view = self._snapshots.apply(snapshot)
        except SnapshotError as exc:
            # Counted by reason in SnapshotStore.refusals; the last one is a health alarm.
            log.warning("snapshot refused (%s): %s", exc.reason, exc)
            return
        self._desks.book.snapshot = view
        self._doors.snapshot_applied()
        if self._vehicle is not None:
            self._vehicle.snapshot_applied(view, compact=True)
        log.info(
            "snapshot v%d: %d desks, %d bookings, %d badges",
            view.version,
            len(view.desks),
            len(view.body.bookings),
            len(view.badges),
        )
        self._desks.show_steady()
