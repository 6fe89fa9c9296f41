"""Entry point of `ruang edge run`: load the config, run the agent until stopped."""

from __future__ import annotations

import logging
from pathlib import Path

from .agent import EdgeAgent
from .settings import load_edge_settings

log = logging.getLogger(__name__)


async def run(config_path: Path | None) -> None:
    settings = load_edge_settings(config_path)
    await EdgeAgent(settings).run()
