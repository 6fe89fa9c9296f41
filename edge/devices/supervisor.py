"""Keeps one device session alive: reopen with jittered backoff when the device goes away."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ruang.backoff import Backoff

from ..watchdog import beat

log = logging.getLogger(__name__)

# What "the device went away" looks like from pyserial, asyncio and bleak.
DEVICE_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError, EOFError)


async def supervise(
    name: str,
    session: Callable[[], Awaitable[None]],
    *,
    backoff: Backoff | None = None,
    on_down: Callable[[str], None] | None = None,
    errors: tuple[type[BaseException], ...] = DEVICE_ERRORS,
) -> None:
    """Runs `session()` until cancelled.

    A session that returns or raises one of `errors` means the device is gone:
    `on_down(reason)` is called, and the session is started again after a
    jittered, capped exponential delay (reset whenever a session lasted long
    enough to be considered healthy). Other exceptions are bugs and propagate.
    """
    backoff = backoff or Backoff(base=0.2, cap=10.0)
    loop = asyncio.get_running_loop()
    while True:
        # Each attempt is a turn of this device's loop (edge/watchdog.py); the session
        # beats on every read. A device that is simply absent keeps beating here.
        beat()
        started = loop.time()
        try:
            await session()
            reason = "session ended"
        except errors as exc:
            reason = str(exc) or type(exc).__name__
        if loop.time() - started > 30:
            backoff.reset()
        delay = backoff.next_delay()
        log.warning("%s unavailable (%s); retrying in %.1f s", name, reason, delay)
        if on_down is not None:
            on_down(reason)
        end = loop.time() + delay
        while (left := end - loop.time()) > 0:
            beat()
            await asyncio.sleep(min(left, 1.0))
