"""Remote config at run time: the cloud's `config` pushes applied to the running node.

The store (edge/remote_config.py) persists versions and decides whether a push
is valid and whether it needs a restart; this part acts on that decision. A
push that only changes hot keys is applied in place (desk units started and
stopped through `reconfigure_desks`, timers and intervals read afresh); any
other change is committed first and then the agent is restarted
(`RestartRequested` from `restart_when_asked`), so it comes back up on the new
version. Every outcome is reported to the cloud as a `ConfigStatus`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ruang import contract

from .devices import Publish
from .devices.deskunit import DeskUnitConfig
from .remote_config import RemoteConfigStore, RestartRequested
from .settings import EdgeSettings

log = logging.getLogger(__name__)

ReconfigureDesks = Callable[[list[DeskUnitConfig]], None]


class ConfigApplier:
    """Holds the running settings (file config with the accepted remote config over it)."""

    def __init__(self, file_settings: EdgeSettings) -> None:
        # The cloud's last accepted config goes over the file's.
        self.store = RemoteConfigStore(file_settings.state_dir)
        self.settings = self.store.effective(file_settings)
        self.node = self.settings.node_id
        self._restart = asyncio.Event()

    @property
    def version(self) -> int | None:
        return self.store.version

    def apply(
        self, push: contract.ConfigPush, publish: Publish, reconfigure_desks: ReconfigureDesks
    ) -> None:
        store = self.store
        decision = store.decide(push.version, push.config, self.settings)
        if decision.ignored:
            log.info("config v%d ignored: running v%s", push.version, store.version)
            return
        if decision.settings is None or decision.config is None:
            log.warning("config v%d refused: %s", push.version, decision.error)
            store.refuse(push.version, decision.error or "refused", reported=True)
            self._status(publish, push.version, False, decision.error)
            return
        # Persisted first: a crash while applying comes back up on the new version.
        store.commit(push.version, decision.config)
        if decision.restart:
            log.warning("config v%d needs an agent restart; restarting", push.version)
            self._restart.set()  # reported as applied once the new agent runs it
            return
        try:
            reconfigure_desks(decision.settings.desk_units)
        except Exception as exc:
            log.exception("config v%d could not be applied; rolled back", push.version)
            error = f"apply failed, rolled back: {type(exc).__name__}: {exc}"
            store.rollback(error, reported=True)
            self._status(publish, push.version, False, error)
            return
        self.settings = decision.settings
        log.info("config v%d applied (%d desk units)", push.version, len(self.settings.desk_units))
        self._status(publish, push.version, True, None)

    def report_at_start(self, publish: Publish) -> None:
        store = self.store
        if store.refused is not None and not store.refused_reported:
            self._status(publish, store.refused[0], False, store.refused[1])
            store.mark_reported()
        if store.version is not None:
            # Also confirms a push that needed a restart: it runs now.
            self._status(publish, store.version, True, None)

    async def restart_when_asked(self) -> None:
        await self._restart.wait()
        raise RestartRequested("remote config needs a restart")

    def _status(self, publish: Publish, version: int, applied: bool, error: str | None) -> None:
        publish(
            contract.ConfigStatus(
                node=self.node,
                version=version,
                applied=applied,
                error=error[:512] if error else None,
                active_version=self.store.version,
            )
        )
