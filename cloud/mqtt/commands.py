"""What the cloud's services need to send a command to a node, and nothing more.

The API (LED colour, node config), the snapshot publisher and QR check-in type
their dependency with `CommandSender`, so they depend on this small protocol and
not on ingestion; the broker session (cloud/mqtt/session.py) is the one
implementation, created and owned by the ingestion pipeline that shares its
connection.
"""

from __future__ import annotations

from typing import Protocol

from ruang import contract


class NotConnected(RuntimeError):
    """The cloud has no MQTT connection right now."""


class CommandSender(Protocol):
    """Publishes cloud -> edge messages over the cloud's broker connection."""

    @property
    def connected(self) -> bool:
        """True while a broker connection is up."""
        ...

    @property
    def connects(self) -> int:
        """Connections made so far: a change means a new session (retained state to resend)."""
        ...

    async def publish(self, message: contract.Message, *, retain: bool = False) -> str:
        """Sends `message`; returns its topic. Raises NotConnected without a connection."""
        ...
