"""Asyncio serial port speaking the desk unit protocol, for the Raspberry Pi side.

`DeskUnitPort` glues a pyserial-asyncio-fast transport (device path, pty path or
`socket://host:port`) to the sans-io `FrameDecoder` and `LinkEndpoint`: incoming
frames are acked and queued for `receive()`, `send()` waits for the unit's Ack,
and one `loop.call_later` timer, re-armed at the link's next deadline, drives
retransmissions. Single event loop, no threads, no polling loops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Any

import serial_asyncio_fast

from firmware_bridge.deskunit import (
    UNIT_TO_PI,
    DecoderStats,
    Frame,
    FrameDecoder,
    Message,
    MsgType,
    NackReason,
    RequestHello,
    needs_ack,
)
from firmware_bridge.deskunit_link import (
    DEFAULT_ACK_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    LinkEndpoint,
    LinkStats,
    Outcome,
    Settled,
)

DEFAULT_BAUDRATE = 115200
RECEIVE_QUEUE_SIZE = 1024


class DeskUnitError(ConnectionError):
    """Base class of desk unit port errors.

    A ConnectionError, so callers that treat "the unit did not take it" as one
    case (absent, refused, unplugged) can catch a single built-in type.
    """


class NackError(DeskUnitError):
    """The unit refused a message (the reason will not change on retry)."""

    def __init__(self, message: Message, reason: NackReason | None) -> None:
        name = reason.name if reason is not None else "unknown"
        super().__init__(f"desk unit refused {type(message).__name__}: Nack {name}")
        self.message = message
        self.reason = reason


class DeliveryFailed(DeskUnitError, TimeoutError):
    """No Ack arrived after all retransmissions (unit absent, unplugged or wedged)."""

    def __init__(self, message: Message, attempts: int) -> None:
        super().__init__(
            f"desk unit did not ack {type(message).__name__} after {attempts} attempts"
        )
        self.message = message


class PortClosed(DeskUnitError):
    """The serial port is closed: closed by us, or lost (device unplugged, pty gone)."""


@dataclass(frozen=True)
class PortStats:
    decoder: DecoderStats
    link: LinkStats
    dropped: int

    @property
    def retransmits(self) -> int:
        return self.link.retransmits

    @property
    def give_ups(self) -> int:
        return self.link.give_ups


class _Protocol(asyncio.Protocol):
    def __init__(self, port: DeskUnitPort) -> None:
        self._port = port

    def data_received(self, data: bytes) -> None:
        self._port._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._port._on_lost(exc)


_CLOSED = object()


class DeskUnitPort:
    """One open serial link to one desk unit. Create with `DeskUnitPort.open`."""

    def __init__(
        self,
        *,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        accepts: Collection[MsgType] = UNIT_TO_PI,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder()
        self._link = LinkEndpoint(accepts=accepts, ack_timeout=ack_timeout, max_retries=max_retries)
        self._queue: asyncio.Queue[Frame | object] = asyncio.Queue()
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._in_flight = asyncio.Semaphore(self._link.max_in_flight)
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._close_error: PortClosed | None = None
        self._dropped = 0
        self._closed_by_us = False
        self.url = ""

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        request_hello: bool = True,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> AsyncIterator[DeskUnitPort]:
        """Open `url` (device, pty or socket://), yield the port, close it on exit.

        With request_hello the port asks the unit for Hello right away, so the
        first received frame tells which unit is on the other end even if its
        power-on Hello was sent before the port was opened.
        """
        port = await cls.connect(
            url,
            baudrate=baudrate,
            request_hello=request_hello,
            ack_timeout=ack_timeout,
            max_retries=max_retries,
        )
        try:
            yield port
        finally:
            await port.close()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        request_hello: bool = True,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> DeskUnitPort:
        """Open the port without a context manager; call `close()` when done."""
        port = cls(ack_timeout=ack_timeout, max_retries=max_retries)
        port.url = url
        loop = asyncio.get_running_loop()
        transport, _ = await serial_asyncio_fast.create_serial_connection(
            loop, lambda: _Protocol(port), url, baudrate=baudrate
        )
        port._transport = transport
        # A lone 0x00 ends whatever half frame the unit's decoder may hold
        # from before we opened the port, so our first frame is not lost.
        transport.write(b"\x00")
        if request_hello:
            hello = port.send_nowait(RequestHello())
            # Fire and forget: a unit that is off must not fail the open.
            hello.add_done_callback(_consume)
        return port

    # -- public API -------------------------------------------------------

    @property
    def stats(self) -> PortStats:
        """Decoder counts (frames, rejects by reason), link counts, dropped frames."""
        return PortStats(
            self._decoder.stats.snapshot(), _copy_stats(self._link.stats), self._dropped
        )

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    async def wait_closed(self) -> None:
        """Return when the port is closed (by `close()` or because the link was lost)."""
        await asyncio.shield(self._closed)

    async def receive(self) -> Frame:
        """Next delivered frame; raises PortClosed once the port is closed and drained."""
        item = await self._queue.get()
        if item is _CLOSED:
            # Leave the marker for any other reader, then report why.
            self._queue.put_nowait(_CLOSED)
            raise self._close_error or PortClosed("port closed")
        assert isinstance(item, Frame)
        return item

    def __aiter__(self) -> DeskUnitPort:
        return self

    async def __anext__(self) -> Frame:
        """Iterate frames: ends quietly after `close()`, raises PortClosed if the link is lost."""
        try:
            return await self.receive()
        except PortClosed:
            if self._closed_by_us:
                raise StopAsyncIteration from None
            raise

    def send_nowait(self, message: Message) -> asyncio.Future[None]:
        """Write `message`; the future resolves on Ack (or at once if no ack is needed)."""
        if self._transport is None or self.is_closed:
            raise self._close_error or PortClosed("port not open")
        seq, wire = self._link.send(message, self._loop.time())
        future: asyncio.Future[None] = self._loop.create_future()
        if needs_ack(message):
            self._waiters[seq] = future
        else:
            future.set_result(None)
        self._transport.write(wire)
        self._arm_timer()
        return future

    async def send(self, message: Message) -> None:
        """Send and wait for the Ack. Raises NackError, DeliveryFailed or PortClosed."""
        async with self._in_flight:
            await self.send_nowait(message)

    async def close(self) -> None:
        """Close the port; pending sends fail with PortClosed, iteration ends."""
        self._closed_by_us = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self._finish(PortClosed(f"port {self.url} closed"))
        await asyncio.sleep(0)

    # -- callbacks ----------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        now = self._loop.time()
        assert self._transport is not None
        for item in self._decoder.feed(data):
            result = self._link.receive(item, now)
            for reply in result.replies:
                self._transport.write(reply)
            self._resolve(result.settled)
            if result.deliver is not None:
                if self._queue.qsize() >= RECEIVE_QUEUE_SIZE:
                    # Nobody is reading; keep the newest events, count the loss.
                    self._queue.get_nowait()
                    self._dropped += 1
                self._queue.put_nowait(result.deliver)
        self._arm_timer()

    def _on_lost(self, exc: Exception | None) -> None:
        if self._closed_by_us:
            self._finish(PortClosed(f"port {self.url} closed"))
            return
        error = PortClosed(f"serial link {self.url} lost: {exc or 'closed by peer'}")
        error.__cause__ = exc
        self._finish(error)

    def _finish(self, error: PortClosed) -> None:
        if self._closed.done():
            return
        self._close_error = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()
        self._queue.put_nowait(_CLOSED)
        self._closed.set_result(None)

    def _resolve(self, settled: tuple[Settled, ...]) -> None:
        for item in settled:
            future = self._waiters.pop(item.seq, None)
            if future is None or future.done():
                continue
            if item.outcome is Outcome.ACKED:
                future.set_result(None)
            elif item.outcome is Outcome.NACKED:
                future.set_exception(NackError(item.message, item.nack_reason))
            else:
                future.set_exception(DeliveryFailed(item.message, self._link.max_retries + 1))

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._link.next_deadline()
        if deadline is not None and not self.is_closed:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._transport is None or self.is_closed:
            return
        polled = self._link.poll(self._loop.time())
        for wire in polled.retransmit:
            self._transport.write(wire)
        self._resolve(polled.settled)
        self._arm_timer()


def _copy_stats(stats: LinkStats) -> LinkStats:
    return LinkStats(**vars(stats))


def _consume(future: asyncio.Future[Any]) -> None:
    # Mark the exception as retrieved so asyncio does not log it.
    if not future.cancelled():
        future.exception()
