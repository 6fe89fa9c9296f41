"""Stopping background tasks for sure.

Python 3.11's `asyncio.wait_for` (used inside aiomqtt, asyncpg and others) can
swallow a cancellation that races with the future it waits for: the task then
carries on, and a plain `task.cancel(); await task` waits forever. Every
component that stops a task of its own goes through `cancel_and_wait`.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def cancel_and_wait(
    task: asyncio.Task[object] | asyncio.Task[None], *, retry_s: float = 1.0
) -> None:
    """Cancels `task` until it is done (re-cancelling every `retry_s`), then returns.

    Its exception, if it failed rather than being cancelled, is logged, not raised:
    stopping must go on for the other components.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=retry_s)
        if not task.done():
            log.warning("task %s ignored a cancel; cancelling again", task.get_name())
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s failed", task.get_name(), exc_info=task.exception())
