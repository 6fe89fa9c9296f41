"""What a vehicle node has counted, kept on disk as a journal so a restart loses none of it.

Each tap that changes the count appends one short JSON line (a rider let on a
trip, the pool car's holder), written and fsynced on a worker thread so a tap is
never held up by the disk; a line costs the same however many riders are aboard.
When a new snapshot comes in, the journal is rewritten as one `state` line
(trips that left the snapshot drop out). Loading replays the lines in order.
A damaged line (a crash mid-write) is skipped: at most that one tap is forgotten.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILE_NAME = "vehicle-journal.jsonl"


class VehicleJournal:
    """Append-only record of boardings let on and of the car's holder; see the docstring."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        # Operations in order: ("append", line) or ("rewrite", line).
        self._ops: list[tuple[str, str]] = []
        self._writer: asyncio.Task[None] | None = None
        # The file ends in half a line (a crash mid-write): the next append starts a new one.
        self._torn = False

    # --- loading ------------------------------------------------------------------------

    def load(self) -> tuple[dict[str, Any], Any]:
        """(boarding state for `BoardingBook.restore`, car holder for `PoolCarBook.restore`)."""
        aboard: dict[tuple[str, str, str], list[Any]] = {}
        holder: Any = None
        try:
            text = self.path.read_text()
            self._torn = bool(text) and not text.endswith("\n")
            lines = text.splitlines()
        except FileNotFoundError:
            lines = []
        except OSError as exc:
            log.warning("vehicle journal %s unreadable: %s", self.path, exc)
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                log.warning("vehicle journal: a damaged line skipped")
                continue
            if not isinstance(entry, dict):
                continue
            if "state" in entry and isinstance(entry["state"], dict):
                aboard = {}
                for row in entry["state"].get("aboard", []):
                    if isinstance(row, list) and len(row) == 5:
                        aboard[(row[0], row[1], row[2])] = row
                holder = entry["state"].get("car")
            if isinstance(entry.get("b"), list) and len(entry["b"]) == 5:
                row = entry["b"]
                aboard[(row[0], row[1], row[2])] = row
            if "car" in entry:
                holder = entry["car"]
        walk_ons: dict[tuple[str, str], int] = {}
        for trip, date, _, reason, _ in aboard.values():
            if reason == "walk_on":
                walk_ons[(trip, date)] = walk_ons.get((trip, date), 0) + 1
        boarding = {
            "aboard": list(aboard.values()),
            "walk_ons": [[t, d, n] for (t, d), n in walk_ons.items()],
        }
        return boarding, holder

    # --- writing ------------------------------------------------------------------------

    def boarded(
        self, trip: str, date: str, person: str, reason: str, reservation: str | None
    ) -> None:
        self._queue("append", json.dumps({"b": [trip, date, person, reason, reservation]}))

    def car(self, holder: dict[str, Any] | None) -> None:
        self._queue("append", json.dumps({"car": holder}))

    def rewrite(self, boarding: dict[str, Any], holder: dict[str, Any] | None) -> None:
        """Replaces the journal with one line holding the whole state (a new snapshot)."""
        state = {"aboard": boarding.get("aboard", []), "car": holder}
        self._queue("rewrite", json.dumps({"state": state}))

    def _queue(self, op: str, line: str) -> None:
        self._ops.append((op, line))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not running (start-up): written now
            self._apply(self._take())
            return
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._drain())

    def _take(self) -> list[tuple[str, str]]:
        ops, self._ops = self._ops, []
        return ops

    async def _drain(self) -> None:
        while self._ops:
            await asyncio.to_thread(self._apply, self._take())

    def _apply(self, ops: list[tuple[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        last_rewrite = max((i for i, (op, _) in enumerate(ops) if op == "rewrite"), default=-1)
        if last_rewrite >= 0:
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                f.writelines(line + "\n" for _, line in ops[last_rewrite:])
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self.path)
            self._torn = False
            return
        with open(self.path, "a") as f:
            if self._torn:
                f.write("\n")
                self._torn = False
            f.writelines(line + "\n" for _, line in ops)
            f.flush()
            os.fsync(f.fileno())

    async def flushed(self) -> None:
        """Returns once everything recorded so far is on disk."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
