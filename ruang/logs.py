"""Console logging set-up shared by every `ruang` command."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("RUANG_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Per-request and per-packet chatter from libraries hides what matters.
    for noisy in ("amqtt", "transitions", "uvicorn.access", "aiosqlite", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
