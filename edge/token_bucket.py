"""Paces the uplink's backlog drain at the rate the cloud sets (`backlog_rate` command).

A token bucket with bursts of a tenth of a second's worth; a rate of None
means no limit, and a new rate wakes a waiting drain at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class TokenBucket:
    """Paces the backlog; `rate` None means no limit. A new rate applies to the next take."""

    def __init__(self, rate: float | None) -> None:
        self._changed = asyncio.Event()
        self.rate = rate
        self._tokens = 0.0
        self._stamp = time.monotonic()

    @property
    def rate(self) -> float | None:
        return self._rate

    @rate.setter
    def rate(self, value: float | None) -> None:
        self._rate = value
        # Bursts of a tenth of a second's worth: smooth for the cloud, cheap for us.
        self._burst = 1.0 if value is None else max(1.0, value / 10)
        self._changed.set()

    async def take(self) -> None:
        while True:
            if self._rate is None:
                return
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            self._changed.clear()
            # Wake early if the cloud changes the rate while we wait.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout((1.0 - self._tokens) / self._rate):
                    await self._changed.wait()
