"""Sans-io reliability layer of the desk unit protocol: seq numbers, acks, retransmission.

`LinkEndpoint` is the same object on both ends of the wire (Pi and desk unit
simulator). It never touches a port or a clock: the caller passes the bytes it
decoded and the current monotonic time, and writes out the bytes it gets back.
The rules it implements are in docs/desk-unit-protocol.md, section "Reliability".

Typical use::

    link = LinkEndpoint(accepts=UNIT_TO_PI)
    seq, wire = link.send(LedSet(...), now)          # write `wire`
    result = link.receive(item, now)                 # item from FrameDecoder.feed
    # write result.replies, deliver result.deliver, resolve result.settled
    polled = link.poll(now)                          # at link.next_deadline()
    # write polled.retransmit, resolve polled.settled
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

from firmware_bridge.deskunit import (
    Ack,
    Frame,
    Message,
    MsgType,
    Nack,
    NackReason,
    Rejected,
    encode_frame,
    msg_type,
    needs_ack,
)

DEFAULT_ACK_TIMEOUT = 0.1
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_IN_FLIGHT = 16

# Decoder rejects that are worth a Nack: the header survived well enough to
# name a seq. COBS errors, runts and over-long runs have no trustworthy header.
_NACK_FOR_REJECT: dict[str, NackReason] = {
    "bad_crc": NackReason.BAD_CRC,
    "unknown_type": NackReason.UNKNOWN_TYPE,
    "bad_version": NackReason.BAD_VERSION,
    "bad_length": NackReason.BAD_LENGTH,
    "bad_value": NackReason.BAD_LENGTH,
}
# Nacks that mean "the line garbled it" or "try later": the sender retries.
# Any other reason would fail the same way again, so it is final.
_RETRYABLE = frozenset({NackReason.BAD_CRC, NackReason.BUSY})


class Outcome(StrEnum):
    ACKED = "acked"
    NACKED = "nacked"
    GAVE_UP = "gave_up"


@dataclass(frozen=True, slots=True)
class Settled:
    """The final fate of one outgoing message that needed an ack."""

    seq: int
    message: Message
    outcome: Outcome
    nack_reason: NackReason | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """What to do after `LinkEndpoint.receive`: deliver, write replies, resolve settled."""

    deliver: Frame | None = None
    replies: tuple[bytes, ...] = ()
    settled: tuple[Settled, ...] = ()


@dataclass(frozen=True, slots=True)
class Polled:
    """What to do after `LinkEndpoint.poll`: write retransmissions, resolve give-ups."""

    retransmit: tuple[bytes, ...] = ()
    settled: tuple[Settled, ...] = ()


@dataclass
class LinkStats:
    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    acks_sent: int = 0
    nacks_sent: int = 0
    acked: int = 0
    nacked: int = 0
    retransmits: int = 0
    give_ups: int = 0
    stray_acks: int = 0


class LinkBusy(RuntimeError):
    """Too many messages await an ack; wait for one to settle before sending more."""


@dataclass
class _Pending:
    message: Message
    wire: bytes
    deadline: float
    retries: int = 0


@dataclass
class LinkEndpoint:
    """One end of a desk unit link (see module docstring).

    accepts: message types this side handles; other valid frames are Nacked
    UNKNOWN_TYPE (e.g. a unit receiving BadgeRead). None accepts all.
    """

    accepts: Collection[MsgType] | None = None
    ack_timeout: float = DEFAULT_ACK_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    stats: LinkStats = field(default_factory=LinkStats)
    _next_seq: int = field(default=0, init=False)
    _pending: dict[int, _Pending] = field(default_factory=dict, init=False)
    _last_delivered: Frame | None = field(default=None, init=False)

    def _take_seq(self) -> int:
        # Skip seqs still awaiting an ack so an Ack can never settle the wrong message.
        for _ in range(256):
            seq = self._next_seq
            self._next_seq = (seq + 1) & 0xFF
            if seq not in self._pending:
                return seq
        raise LinkBusy("all 256 sequence numbers await an ack")  # pragma: no cover

    @property
    def in_flight(self) -> int:
        """Messages sent and not yet acked, nacked or given up."""
        return len(self._pending)

    def send(self, message: Message, now: float) -> tuple[int, bytes]:
        """Assign a seq and return (seq, wire bytes); track it if it needs an ack."""
        if needs_ack(message) and len(self._pending) >= self.max_in_flight:
            raise LinkBusy(f"{len(self._pending)} messages await an ack")
        seq = self._take_seq()
        wire = encode_frame(seq, message)
        self.stats.sent += 1
        if needs_ack(message):
            self._pending[seq] = _Pending(message, wire, now + self.ack_timeout)
        return seq, wire

    def _control(self, message: Ack | Nack) -> bytes:
        # Acks and Nacks use seqs too (every frame has one) but are never tracked.
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFF
        if isinstance(message, Ack):
            self.stats.acks_sent += 1
        else:
            self.stats.nacks_sent += 1
        return encode_frame(seq, message)

    def receive(self, item: Frame | Rejected, now: float) -> Received:
        """Handle one item from FrameDecoder.feed."""
        if isinstance(item, Rejected):
            return self._rejected(item)
        message = item.message
        if isinstance(message, Ack | Nack):
            return Received(settled=self._settle(message, now))
        if self.accepts is not None and msg_type(message) not in self.accepts:
            return Received(replies=(self._control(Nack(item.seq, NackReason.UNKNOWN_TYPE)),))
        replies = (self._control(Ack(item.seq)),) if needs_ack(message) else ()
        if item == self._last_delivered:
            # Our Ack was lost and the sender retransmitted: ack again, deliver once.
            self.stats.duplicates += 1
            return Received(replies=replies)
        self._last_delivered = item
        self.stats.delivered += 1
        return Received(deliver=item, replies=replies)

    def _rejected(self, item: Rejected) -> Received:
        reason = _NACK_FOR_REJECT.get(item.reason)
        if reason is None or item.seq is None:
            return Received()
        if item.msg_type in (MsgType.ACK, MsgType.NACK):
            # Never Nack a control frame: two ends garbling each other's
            # Nacks must not ping-pong forever. The sender's timer recovers.
            return Received()
        return Received(replies=(self._control(Nack(item.seq, reason)),))

    def _settle(self, message: Ack | Nack, now: float) -> tuple[Settled, ...]:
        pending = self._pending.get(message.acked_seq)
        if pending is None:
            self.stats.stray_acks += 1
            return ()
        seq = message.acked_seq
        if isinstance(message, Ack):
            del self._pending[seq]
            self.stats.acked += 1
            return (Settled(seq, pending.message, Outcome.ACKED),)
        if message.reason in _RETRYABLE and pending.retries < self.max_retries:
            # BAD_CRC: resend at the next poll, no need to wait out the timeout.
            # BUSY: give the receiver a full timeout before asking again.
            delay = self.ack_timeout if message.reason is NackReason.BUSY else 0.0
            pending.deadline = now + delay
            return ()
        del self._pending[seq]
        self.stats.nacked += 1
        return (Settled(seq, pending.message, Outcome.NACKED, message.reason),)

    def next_deadline(self) -> float | None:
        """When `poll` next has work to do, or None if nothing awaits an ack."""
        if not self._pending:
            return None
        return min(p.deadline for p in self._pending.values())

    def poll(self, now: float) -> Polled:
        """Retransmit messages unacked past their deadline; give up after max_retries."""
        retransmit: list[bytes] = []
        settled: list[Settled] = []
        for seq, pending in list(self._pending.items()):
            if pending.deadline > now:
                continue
            if pending.retries >= self.max_retries:
                del self._pending[seq]
                self.stats.give_ups += 1
                settled.append(Settled(seq, pending.message, Outcome.GAVE_UP))
                continue
            pending.retries += 1
            pending.deadline = now + self.ack_timeout
            self.stats.retransmits += 1
            retransmit.append(pending.wire)
        return Polled(tuple(retransmit), tuple(settled))
