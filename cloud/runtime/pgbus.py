"""The signal bus across processes: PostgreSQL LISTEN/NOTIFY (see cloud/runtime/bus.py).

Every process of a multi-process cloud LISTENs on one channel over a connection
of its own (cloud/db/pg_direct.py) and NOTIFYs on another. Publishing only
queues; a sender task merges what is queued per signal (a burst of ingested
batches is one notification) and sends it in payloads under PostgreSQL's
8000-byte limit. A process hears its own notifications too, so its local
listeners get them the same way as everyone else's.

Both connections are re-made with jittered backoff. Notifications sent while a
process was not listening are lost (NOTIFY keeps nothing for absent listeners):
`on_reconnect` callbacks run after every re-made LISTEN so the process can
re-read what it may have missed (the snapshot publisher marks every node due).
A notification that does not parse is counted and logged, never delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from cloud.db.pg_direct import connect
from cloud.runtime.bus import Listener, Listeners, Signal
from ruang.backoff import Backoff
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CHANNEL = "ruang_signals"
# PostgreSQL refuses payloads of 8000 bytes or more; keep a margin.
MAX_PAYLOAD = 7500
# Publications waiting for the sender; beyond it the oldest are dropped (hints only).
QUEUE_MAX = 10_000
# How often an idle listening connection is checked (a dead socket is not noticed otherwise).
PROBE_S = 5.0
FIRST_LISTEN_WAIT_S = 10.0
_SIGNALS = {signal.value: signal for signal in Signal}


def _dump(signal: Signal, ids: list[str]) -> str:
    return json.dumps({"s": signal.value, "ids": ids}, separators=(",", ":"))


def encode(signal: Signal, ids: list[str]) -> list[str]:
    """Payloads carrying `signal` with `ids`, each under MAX_PAYLOAD bytes."""
    payloads: list[str] = []
    chunk: list[str] = []
    size = 0
    base = len(_dump(signal, []))
    for item in ids:
        cost = len(json.dumps(item).encode()) + 1
        if base + cost > MAX_PAYLOAD:
            log.warning("id of %d bytes too long for a %s signal; left out", cost, signal.value)
            continue
        if chunk and base + size + cost > MAX_PAYLOAD:
            payloads.append(_dump(signal, chunk))
            chunk, size = [], 0
        chunk.append(item)
        size += cost
    if chunk or not ids:
        payloads.append(_dump(signal, chunk))
    return payloads


def decode(payload: str) -> tuple[Signal, list[str]]:
    """The signal and ids of a payload; ValueError with the reason if it is not one."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("not an object")
    signal = _SIGNALS.get(data.get("s"))  # type: ignore[arg-type]
    ids = data.get("ids")
    if signal is None:
        raise ValueError(f"unknown signal {data.get('s')!r}")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("ids is not a list of strings")
    return signal, ids


class PgBus:
    """Signals through PostgreSQL NOTIFY; a `Bus` (cloud/runtime/bus.py)."""

    def __init__(self, database_url: str, *, name: str) -> None:
        self._url = database_url
        self._name = name
        self._listeners = Listeners()
        self._queue: deque[tuple[Signal, list[str]]] = deque(maxlen=QUEUE_MAX)
        self._wake = asyncio.Event()
        self._listening = asyncio.Event()
        self._reconnect_callbacks: list[Callable[[], object]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.received = 0
        self.rejected = 0
        self.sent = 0

    # --- the Bus protocol ----------------------------------------------------------------

    def publish(self, signal: Signal, ids: Iterable[str] = ()) -> None:
        self._queue.append((signal, [i for i in ids if i]))
        self._wake.set()

    def listen(self, signal: Signal, listener: Listener) -> None:
        self._listeners.add(signal, listener)

    def on_reconnect(self, callback: Callable[[], object]) -> None:
        """Runs `callback` after each LISTEN re-made (signals may have been missed)."""
        self._reconnect_callbacks.append(callback)

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    async def start(self) -> None:
        """Starts both loops and waits (bounded) for the first LISTEN to be in place."""
        self._tasks = [
            asyncio.create_task(self._listen_loop(), name="ruang-bus-listen"),
            asyncio.create_task(self._send_loop(), name="ruang-bus-send"),
        ]
        try:
            async with asyncio.timeout(FIRST_LISTEN_WAIT_S):
                await self._listening.wait()
        except TimeoutError:
            log.warning("signal bus not listening yet; it keeps trying")

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []

    # --- receiving -----------------------------------------------------------------------

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            signal, ids = decode(payload)
        except ValueError as exc:
            self.rejected += 1
            log.warning("signal refused: %s", exc)
            return
        self.received += 1
        self._listeners.deliver(signal, ids)

    async def _listen_loop(self) -> None:
        backoff = Backoff(base=0.2, cap=5.0)
        first = True
        while True:
            conn: Any = None
            try:
                conn = await connect(self._url, f"{self._name}-listen")
                lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

                def terminated(_conn: object, lost: asyncio.Future[None] = lost) -> None:
                    if not lost.done():
                        lost.set_result(None)

                conn.add_termination_listener(terminated)
                await conn.add_listener(CHANNEL, self._notified)
                self._listening.set()
                backoff.reset()
                if not first:
                    log.info("signal bus listening again")
                    for callback in self._reconnect_callbacks:
                        callback()
                first = False
                while not lost.done():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(PROBE_S):
                            await asyncio.shield(lost)
                    if not lost.done():
                        await conn.fetchval("SELECT 1")
                raise ConnectionError("listening connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._listening.is_set() or backoff.attempt == 0:
                    log.warning("signal bus lost its listening connection: %s", exc)
                self._listening.clear()
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(backoff.next_delay())

    # --- sending -------------------------------------------------------------------------

    def _take(self) -> list[str]:
        merged: dict[Signal, dict[str, None]] = {}
        while self._queue:
            signal, ids = self._queue.popleft()
            merged.setdefault(signal, {}).update(dict.fromkeys(ids))
        payloads: list[str] = []
        for signal, unique_ids in merged.items():
            payloads += encode(signal, list(unique_ids))
        return payloads

    async def _send_loop(self) -> None:
        backoff = Backoff(base=0.2, cap=5.0)
        conn: Any = None
        pending: list[str] = []
        try:
            while True:
                if not pending:
                    await self._wake.wait()
                    self._wake.clear()
                    pending = self._take()
                try:
                    if conn is None or conn.is_closed():
                        conn = await connect(self._url, f"{self._name}-notify")
                    while pending:
                        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, pending[0])
                        pending.pop(0)
                        self.sent += 1
                    backoff.reset()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if backoff.attempt == 0:
                        log.warning("signal bus cannot notify, will retry: %s", exc)
                    if conn is not None:
                        conn.terminate()
                        conn = None
                    await asyncio.sleep(backoff.next_delay())
                    # Newer signals join the retry; the oldest go if it grows too long.
                    pending = (pending + self._take())[-QUEUE_MAX:]
        finally:
            if conn is not None:
                conn.terminate()
