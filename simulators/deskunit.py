"""A desk unit that lives on a pseudo-terminal and speaks the real wire protocol.

`DeskUnitSimulator` stands in for the desk unit MCU: it owns a pty pair, hands
out the slave path (open it like /dev/ttyUSB0), and answers byte for byte as the
firmware would, using the very codec and link layer of `firmware_bridge`. Tests
and the demo drive it with `set_presence`, `tap` and `press`, observe the LED
through `led` / `wait_led`, and inject line faults through `fault`.

Everything runs on the asyncio loop: the master fd is watched with
`loop.add_reader`, timers use `loop.call_later`; there are no threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_bridge import cobs
from firmware_bridge.deskunit import (
    PI_TO_UNIT,
    BadgeRead,
    Beep,
    ButtonPressed,
    Capability,
    DecoderStats,
    Frame,
    FrameDecoder,
    Heartbeat,
    Hello,
    LedPattern,
    LedSet,
    Message,
    MsgType,
    PresenceChanged,
    RequestHello,
    needs_ack,
)
from firmware_bridge.deskunit_link import LinkEndpoint, LinkStats, Settled
from simulators.pty import PtyDevice

ALL_CAPABILITIES = Capability.NFC | Capability.PRESENCE | Capability.LED | Capability.BUTTON
DEFAULT_FIRMWARE = (1, 4, 2)
# A real UART keeps shifting bits out whether or not anyone listens; the pty
# instead fills up. Beyond this backlog the simulator drops bytes like a UART.


@dataclass(frozen=True, slots=True)
class LedState:
    """What the desk unit's RGB LED shows."""

    r: int = 0
    g: int = 0
    b: int = 0
    pattern: LedPattern = LedPattern.OFF
    duration_s: int = 0

    @classmethod
    def from_command(cls, cmd: LedSet) -> LedState:
        return cls(cmd.r, cmd.g, cmd.b, LedPattern(cmd.pattern), cmd.duration_s)


LED_OFF = LedState()


@dataclass
class Fault:
    """Line faults to inject, for resynchronisation and retransmission tests.

    corrupt_next: flip one CRC bit in each of the next N outgoing frames
    (re-stuffed, so framing stays intact and the Pi sees "bad_crc").
    garbage_before_next: raw bytes written just before the next outgoing frame.
    drop_next_rx: ignore the next N frames received, as if lost on the line.
    """

    corrupt_next: int = 0
    garbage_before_next: bytes = b""
    drop_next_rx: int = 0


@dataclass
class SimStats:
    decoder: DecoderStats
    link: LinkStats
    tx_bytes: int = 0
    tx_dropped_bytes: int = 0


@dataclass
class _Waiter:
    predicate: Callable[[LedState], bool]
    future: asyncio.Future[LedState] = field(repr=False)


class DeskUnitSimulator(PtyDevice):
    """One simulated desk unit on a fresh pty. Use as `async with DeskUnitSimulator(...) as sim`."""

    def __init__(
        self,
        serial: str = "RU-DU-000001",
        *,
        firmware: tuple[int, int, int] = DEFAULT_FIRMWARE,
        capabilities: Capability = ALL_CAPABILITIES,
        heartbeat_s: float = 10.0,
        ack_timeout: float = 0.1,
        max_retries: int = 3,
        fault: Fault | None = None,
    ) -> None:
        super().__init__()
        self.hello = Hello(*firmware, capabilities=capabilities, serial=serial)
        self.heartbeat_s = heartbeat_s
        self.fault = fault or Fault()
        accepts = set(PI_TO_UNIT)
        if not capabilities & Capability.LED:
            # Firmware built without an LED driver does not know LedSet at all.
            accepts.discard(MsgType.LED_SET)
        if not capabilities & Capability.BUZZER:
            # Nor does one without a buzzer know Beep (desk units have none).
            accepts.discard(MsgType.BEEP)
        self._link = LinkEndpoint(accepts=accepts, ack_timeout=ack_timeout, max_retries=max_retries)
        self._decoder = FrameDecoder()
        self.led: LedState = LED_OFF
        self.led_history: list[LedState] = []
        self.beeps: list[Beep] = []
        """Every Beep the unit sounded, in order (door readers of vehicles)."""
        self.present = False
        self.received: list[Frame] = []
        """Frames delivered from the Pi, in order (duplicates suppressed)."""
        self.settled: list[Settled] = []
        """Outcome of every sent message that needed an ack."""
        self._started_at = 0.0
        self._retx_timer: asyncio.TimerHandle | None = None
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self._led_timer: asyncio.TimerHandle | None = None
        self._led_waiters: list[_Waiter] = []
        self._settle_event = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------

    @property
    def serial(self) -> str:
        return self.hello.serial

    def _started(self) -> None:
        """The pty is open: the power-on Hello, then heartbeats."""
        self._started_at = self._now()
        self._send(self.hello)
        self._schedule_heartbeat()

    def _stopped(self) -> None:
        """Closing: stop timers and release whoever waits on the LED or on acks."""
        for timer in (self._retx_timer, self._heartbeat_timer, self._led_timer):
            if timer is not None:
                timer.cancel()
        for waiter in self._led_waiters:
            if not waiter.future.done():
                waiter.future.cancel()
        self._led_waiters.clear()
        self._settle_event.set()

    async def __aenter__(self) -> DeskUnitSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- what a person at the desk does ---------------------------------------

    async def set_presence(self, present: bool) -> int:
        """The presence sensor changes state; returns the frame's seq."""
        self.present = present
        return await self.send(PresenceChanged(present))

    async def tap(self, uid: bytes | str) -> int:
        """A badge is held to the reader; `uid` as bytes or hex (4, 7 or 10 bytes)."""
        raw = bytes.fromhex(uid) if isinstance(uid, str) else uid
        return await self.send(BadgeRead(raw))

    async def press(self, button: int, long: bool = False) -> int:
        return await self.send(ButtonPressed(button, long))

    async def send(self, message: Message) -> int:
        """Send any message (reliably if it needs an ack); returns once it is written.

        Waits only when max_in_flight messages already await an ack.
        """
        self._require_open()
        while needs_ack(message) and self._link.in_flight >= self._link.max_in_flight:
            self._settle_event.clear()
            await self._settle_event.wait()
            self._require_open()
        return self._send(message)

    async def inject_raw(self, data: bytes) -> None:
        """Write raw bytes on the line (noise, half frames, hand-made frames)."""
        self._require_open()
        self._write(data)

    # -- observation ------------------------------------------------------------

    @property
    def stats(self) -> SimStats:
        return SimStats(
            self._decoder.stats.snapshot(),
            LinkStats(**vars(self._link.stats)),
            self.tx_bytes,
            self.tx_dropped_bytes,
        )

    @property
    def in_flight(self) -> int:
        return self._link.in_flight

    # A timeout argument (ASYNC109) on purpose: tests read better with the
    # bound next to the predicate, and a forgotten outer timeout would hang CI.
    async def wait_led(
        self,
        predicate: Callable[[LedState], bool],
        timeout: float = 2.0,  # noqa: ASYNC109
    ) -> LedState:
        """Return the LED state once `predicate(state)` holds (now or after a change)."""
        if predicate(self.led):
            return self.led
        assert self._loop is not None
        waiter = _Waiter(predicate, self._loop.create_future())
        self._led_waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter.future, timeout)
        finally:
            if waiter in self._led_waiters:
                self._led_waiters.remove(waiter)

    async def wait_settled(self, timeout: float = 2.0) -> None:  # noqa: ASYNC109
        """Wait until nothing sent awaits an ack (acked, nacked or given up)."""
        async with asyncio.timeout(timeout):
            while self._link.in_flight and not self._closed:
                self._settle_event.clear()
                await self._settle_event.wait()

    # -- internals ----------------------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise ConnectionError(f"desk unit simulator {self.serial} is not running")

    def _send(self, message: Message) -> int:
        seq, wire = self._link.send(message, self._now())
        self._write_frame(wire)
        self._arm_retx()
        return seq

    def _write_frame(self, wire: bytes) -> None:
        if self.fault.garbage_before_next:
            garbage, self.fault.garbage_before_next = self.fault.garbage_before_next, b""
            self._write(garbage)
        if self.fault.corrupt_next > 0:
            self.fault.corrupt_next -= 1
            body = bytearray(cobs.decode(wire[:-1]))
            body[-1] ^= 0x01
            wire = cobs.encode(bytes(body)) + b"\x00"
        self._write(wire)

    def _on_bytes(self, data: bytes) -> None:
        now = self._now()
        for item in self._decoder.feed(data):
            if self.fault.drop_next_rx > 0:
                self.fault.drop_next_rx -= 1
                continue
            result = self._link.receive(item, now)
            for reply in result.replies:
                self._write_frame(reply)
            self._note_settled(result.settled)
            if result.deliver is not None:
                self._obey(result.deliver)
        self._arm_retx()

    def _obey(self, frame: Frame) -> None:
        self.received.append(frame)
        message = frame.message
        if isinstance(message, LedSet):
            self._set_led(LedState.from_command(message))
            if message.duration_s and message.pattern != LedPattern.OFF:
                assert self._loop is not None
                self._led_timer = self._loop.call_later(message.duration_s, self._set_led, LED_OFF)
        elif isinstance(message, Beep):
            self.beeps.append(message)
        elif isinstance(message, RequestHello):
            self._send(self.hello)

    def _set_led(self, state: LedState) -> None:
        if self._led_timer is not None:
            self._led_timer.cancel()
            self._led_timer = None
        self.led = state
        self.led_history.append(state)
        for waiter in list(self._led_waiters):
            if not waiter.future.done() and waiter.predicate(state):
                waiter.future.set_result(state)

    def _note_settled(self, settled: tuple[Settled, ...]) -> None:
        if settled:
            self.settled.extend(settled)
            self._settle_event.set()

    def _arm_retx(self) -> None:
        if self._retx_timer is not None:
            self._retx_timer.cancel()
            self._retx_timer = None
        deadline = self._link.next_deadline()
        if deadline is not None and not self._closed:
            assert self._loop is not None
            self._retx_timer = self._loop.call_at(deadline, self._on_retx_timer)

    def _on_retx_timer(self) -> None:
        self._retx_timer = None
        if self._closed:
            return
        polled = self._link.poll(self._now())
        for wire in polled.retransmit:
            self._write_frame(wire)
        self._note_settled(polled.settled)
        self._arm_retx()

    def _schedule_heartbeat(self) -> None:
        if self.heartbeat_s > 0 and not self._closed:
            assert self._loop is not None
            self._heartbeat_timer = self._loop.call_later(self.heartbeat_s, self._heartbeat)

    def _heartbeat(self) -> None:
        if self._closed:
            return
        uptime = int(self._now() - self._started_at) & 0xFFFFFFFF
        self._send(Heartbeat(uptime))
        self._schedule_heartbeat()
