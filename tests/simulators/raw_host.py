"""The host end of a simulator's pty as a bare fd plus a sans-io decoder.

Simulator tests read through this instead of a driver, so they see exactly the
bytes the simulator wrote, decoded by the codec under test.
"""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
TIMEOUT = 5.0


class Decoder(Protocol[T_co]):
    def feed(self, data: bytes) -> Iterable[T_co]: ...


class RawHost(Generic[T]):
    """Opens `path` raw and non-blocking; decoded items queue up in `items`."""

    def __init__(self, path: str, decoder: Decoder[T]) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.decoder = decoder
        self.items: asyncio.Queue[T] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            return
        for item in self.decoder.feed(data):
            self.items.put_nowait(item)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def next_item(self, kind: type[T]) -> T:
        """The next item of `kind`, skipping others; fails after TIMEOUT seconds."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                item = await self.items.get()
                if isinstance(item, kind):
                    return item

    async def take(self, n: int) -> list[T]:
        out: list[T] = []
        async with asyncio.timeout(TIMEOUT):
            while len(out) < n:
                out.append(await self.items.get())
        return out

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)
