"""Entry point of `ruang edge run`: load the config, run the agent until stopped."""

from __future__ import annotations

import logging
from pathlib import Path

from .agent import EdgeAgent
from .remote_config import RemoteConfigStore, RestartRequested
from .settings import load_edge_settings

log = logging.getLogger(__name__)


async def run(config_path: Path | None) -> None:
    settings = load_edge_settings(config_path)
    try:
        agent = EdgeAgent(settings)
    except Exception as exc:
        # A persisted remote config that cannot even build the agent must not keep
        # systemd restarting it forever: roll back to the previous one and go on.
        store = RemoteConfigStore(settings.state_dir)
        if store.version is None:
            raise
        log.exception("remote config v%d cannot start the agent; rolling back", store.version)
        store.rollback(f"agent failed to start: {type(exc).__name__}: {exc}")
        agent = EdgeAgent(settings)
    try:
        await agent.run()
    except* RestartRequested:
        # Out of the TaskGroup as one plain exception for `ruang edge run` to map to its exit code.
        raise RestartRequested("remote config needs a restart") from None
