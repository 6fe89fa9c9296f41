"""Parsing of broker URLs (`mqtt://user:pass@host:port`, `mqtts://...`) shared by edge and cloud."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ruang.backoff import Backoff


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None


def parse_broker_url(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts", "tcp", "ssl"}:
        raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"broker URL has no host: {url!r}")
    tls = parts.scheme in {"mqtts", "ssl"}
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:  # urlsplit raises on a non-numeric port
        raise ValueError(f"broker URL has a bad port: {url!r}") from exc
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def split_broker_urls(value: str) -> list[str]:
    """The URLs of a comma-separated list (one URL is a list of one); blanks are ignored.

    A comma never appears unescaped in a broker URL (a password with one is written
    %2C), so the comma can separate the nodes of a broker cluster.
    """
    urls = [part.strip() for part in value.split(",") if part.strip()]
    if not urls:
        raise ValueError("no broker URL given")
    return urls


def parse_broker_urls(value: str) -> list[BrokerAddress]:
    """Every address of a comma-separated list of broker URLs, each checked as above."""
    return [parse_broker_url(url) for url in split_broker_urls(value)]


class BrokerRing:
    """The nodes of a broker cluster, tried round-robin: `current` until it fails.

    A client keeps to the node it reached and moves on (`advance`) only when the
    connection fails or is lost, so clients spread over the nodes they were
    configured with and follow the cluster when a node dies. With one address,
    `advance` is a no-op and the client behaves as with a single broker.
    """

    def __init__(self, addresses: list[BrokerAddress]) -> None:
        if not addresses:
            raise ValueError("a broker ring needs at least one address")
        self._addresses = list(addresses)
        self._index = 0
        self._failed_in_a_row = 0

    @classmethod
    def from_urls(cls, value: str) -> BrokerRing:
        return cls(parse_broker_urls(value))

    @property
    def current(self) -> BrokerAddress:
        return self._addresses[self._index]

    @property
    def size(self) -> int:
        return len(self._addresses)

    def advance(self) -> BrokerAddress:
        """Moves to the next node (wrapping round) and returns it."""
        self._index = (self._index + 1) % len(self._addresses)
        self._failed_in_a_row += 1
        return self.current

    def reached(self) -> None:
        """The current node answered: the next failure starts a fresh round."""
        self._failed_in_a_row = 0

    def delay(self, backoff: Backoff) -> float:
        """How long to wait before trying `current` after a failure.

        Until every node of the ring has failed once in a row, only a short jitter
        (up to `backoff.base`): a dead node should cost one attempt, not a growing
        wait, since the next node is most likely up. Once a whole round failed, the
        backoff grows as for a single broker, so a cluster that is down altogether
        is not hammered (and many clients still spread out).
        """
        if self._failed_in_a_row % len(self._addresses):
            return backoff.rng.uniform(0, backoff.base)
        return backoff.next_delay()
