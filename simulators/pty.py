"""A simulated device on the master side of a raw pseudo-terminal.

Every serial simulator (desk unit, LD2410 radar, GPS) is a `PtyDevice`: the host
opens `path` like /dev/ttyUSB0. Reads use `loop.add_reader` on the master fd and
writes queue in a bounded backlog drained by `add_writer`; no threads.
"""

from __future__ import annotations

import asyncio
import os
import tty

# Bytes queued for a host that stopped reading; beyond this they are dropped and counted.
MAX_TX_BACKLOG = 16 * 1024


class PtyDevice:
    """A device on the master side of a fresh raw pty; subclasses get `_on_bytes`."""

    def __init__(self) -> None:
        self._master = -1
        self._slave = -1
        self.path = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tx_backlog = bytearray()
        self.tx_bytes = 0
        self.tx_dropped_bytes = 0
        self._closed = True

    @property
    def running(self) -> bool:
        return not self._closed

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._master, self._slave = os.openpty()
        try:
            # Raw on both ends: no echo, no line discipline rewriting CR/LF.
            tty.setraw(self._master)
            tty.setraw(self._slave)
            os.set_blocking(self._master, False)
            self.path = os.ttyname(self._slave)
        except OSError:
            os.close(self._master)
            os.close(self._slave)
            raise
        # The slave fd stays open while the device lives: without it the master
        # reads EIO whenever the host side has the port closed.
        self._closed = False
        self._loop.add_reader(self._master, self._on_readable)
        self._started()

    async def close(self) -> None:
        """Stop and close both pty fds: the host sees the device vanish."""
        if self._closed:
            return
        self._closed = True
        self._stopped()
        assert self._loop is not None
        self._loop.remove_reader(self._master)
        self._loop.remove_writer(self._master)
        os.close(self._master)
        os.close(self._slave)
        self._tx_backlog.clear()

    def _started(self) -> None:
        """Hook: the pty is open."""

    def _stopped(self) -> None:
        """Hook: about to close; cancel timers here."""

    def _on_bytes(self, data: bytes) -> None:
        """Hook: bytes written by the host."""

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        assert self._loop is not None
        if not self._tx_backlog:
            try:
                written = os.write(self._master, data)
            except BlockingIOError:
                written = 0
            except OSError:
                return
            self.tx_bytes += written
            data = data[written:]
            if not data:
                return
            self._loop.add_writer(self._master, self._on_writable)
        room = MAX_TX_BACKLOG - len(self._tx_backlog)
        self._tx_backlog += data[:room]
        self.tx_dropped_bytes += max(0, len(data) - room)

    def _on_writable(self) -> None:
        assert self._loop is not None
        try:
            written = os.write(self._master, self._tx_backlog)
        except BlockingIOError:
            return
        except OSError:
            written = len(self._tx_backlog)
        self.tx_bytes += written
        del self._tx_backlog[:written]
        if not self._tx_backlog:
            self._loop.remove_writer(self._master)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:
            return
        if data:
            self._on_bytes(data)
