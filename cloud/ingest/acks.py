"""Acknowledgements to nodes of what the cloud has committed: event_ack and audit_ack.

A broker killed outright can lose QoS 1 messages it already PUBACKed, so a node
keeps each event until its event_ack, and each access decision in its
hash-chained audit log until its audit_ack, and resends otherwise; the resend
is a duplicate, dropped by message id and acknowledged again. So a lost ack
costs only a resend, and acks are sent in the background, never holding up a
commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

from cloud.ingest.apply import Envelope, Item
from cloud.mqtt.commands import CommandSender, NotConnected
from ruang import contract

log = logging.getLogger(__name__)

# event_ack messages awaiting the broker's PUBACK at once (see _send_event_acks).
EVENT_ACKS_IN_FLIGHT = 16
# audit_ack carries at most this many sequence numbers per node and commit.
AUDIT_ACK_MAX_SEQS = 5000


class Acks:
    """Sends event_ack / audit_ack for committed (or parked) messages through `sender`."""

    def __init__(self, sender: CommandSender) -> None:
        self._sender = sender
        self._background: set[asyncio.Task[None]] = set()
        # Committed event ids per node, waiting for the event_ack sender (one at a time).
        self._event_acks: dict[str, list[str]] = {}
        self._event_ack_task: asyncio.Task[None] | None = None

    def committed(self, items: list[Item]) -> None:
        """Everything to acknowledge after `items` committed (new or duplicate)."""
        self._access_decisions(items)
        self.events(item.message for item in items if isinstance(item, Envelope))

    async def drain(self, timeout_s: float) -> None:
        """Waits (at most `timeout_s`) for the acks queued so far to be sent."""
        if self._background:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await asyncio.gather(*list(self._background), return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _access_decisions(self, items: list[Item]) -> None:
        """Tells each node which access decisions are now committed (new or replayed)."""
        seqs: dict[str, list[int]] = {}
        for item in items:
            if isinstance(item, Envelope) and isinstance(item.message, contract.AccessDecision):
                seqs.setdefault(item.message.node, []).append(item.message.audit_seq)
        for node, node_seqs in seqs.items():
            self._spawn(
                self._send_quietly(
                    contract.AuditAck(node=node, seqs=tuple(node_seqs[:AUDIT_ACK_MAX_SEQS]))
                )
            )

    def events(self, messages: Iterable[contract.Message]) -> None:
        """Queues an event_ack for every event among `messages`, per node.

        Acks of many commits are coalesced while one is being sent (at most
        MAX_EVENT_ACK_IDS ids per message).
        """
        pending = self._event_acks
        for message in messages:
            if contract.is_event(message):
                pending.setdefault(message.node, []).append(message.id)
        if pending and self._event_ack_task is None:
            self._event_ack_task = self._spawn(self._send_event_acks(pending))

    async def _send_event_acks(self, pending: dict[str, list[str]]) -> None:
        # Several acks in flight at once: the broker's PUBACK to the cloud queues behind
        # every message it is still delivering to us, which can take many seconds in a
        # backlog, while the ack itself reaches the node at once.
        slots = asyncio.Semaphore(EVENT_ACKS_IN_FLIGHT)

        async def send(message: contract.Message) -> None:
            try:
                await self._send_quietly(message)
            finally:
                slots.release()

        try:
            while pending:
                node = next(iter(pending))
                ids = pending[node]
                chunk, rest = ids[: contract.MAX_EVENT_ACK_IDS], ids[contract.MAX_EVENT_ACK_IDS :]
                if rest:
                    pending[node] = rest
                else:
                    del pending[node]
                await slots.acquire()
                self._spawn(send(contract.EventAck(node=node, ids=tuple(chunk))))
        finally:
            self._event_ack_task = None

    async def _send_quietly(self, message: contract.Message) -> None:
        try:
            await self._sender.publish(message)
        except (NotConnected, contract.ContractError) as exc:
            log.info("could not send %s to %s now: %s", type(message).__name__, message.node, exc)
