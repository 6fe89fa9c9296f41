"""Data-subject rights on a grown database: a person's export and erasure, and the cost of
one access-audit row.

SQLite (the default backend) migrated to head, with `EVENTS` tap events from 500 people
(each with a badge and its check-in payload naming them) and as many desk bookings;
the measured person has 1/500 of them. Export and erasure read the events table once
(no index on badge or payload), so they grow with the table: targets are for 200,000
events, "a few seconds" for an admin's or a person's occasional request. The access
audit's `record_read` is one INSERT per read: target mean < 20 ms (it adds to every
audited read).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.targets import check

EVENTS = 200_000
PEOPLE = 500
READS = 300


async def _measure(tmp: Path) -> dict[str, Any]:
    from cloud.db.engine import make_engine, migrate
    from cloud.db.tables import BADGES
    from cloud.db.tables import EVENTS as EVENT_ROWS
    from cloud.db.tables import PEOPLE as PEOPLE_ROWS
    from cloud.people.auth import Principal
    from cloud.privacy import access_audit, erase, export

    url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
    await migrate(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(PEOPLE_ROWS.insert(), [
                {"id": f"p-{i}", "kind": "asn", "name": f"Orang {i}", "role": "asn",
                 "email": f"orang{i}@example.go.id"} for i in range(PEOPLE)
            ])  # fmt: skip
            await conn.execute(BADGES.insert(), [
                {"kind": "nfc", "uid": f"04{i:012X}", "person_id": f"p-{i}", "status": "active",
                 "issued_at": now} for i in range(PEOPLE)
            ])  # fmt: skip
            batch: list[dict[str, Any]] = []
            for n in range(EVENTS):
                i = n % PEOPLE
                badge = f"04{i:012X}"
                batch.append({
                    "message_id": f"m-{n}", "node": "node-1", "desk": f"D{i % 40}",
                    "kind": "checkin", "ts": now - timedelta(seconds=n),
                    "received_at": now, "badge": badge,
                    "payload": {"kind": "checkin", "badge": badge, "person": f"p-{i}"},
                })  # fmt: skip
                if len(batch) == 10_000:
                    await conn.execute(EVENT_ROWS.insert(), batch)
                    batch = []
        figures: dict[str, Any] = {"events": EVENTS, "people": PEOPLE}
        async with engine.connect() as conn:
            started = time.perf_counter()
            found = await export.export_person(conn, "p-7")
            figures["export_s"] = time.perf_counter() - started
        figures["export_events"] = len(found.tables["events"])
        async with engine.begin() as conn:
            started = time.perf_counter()
            done = await erase.erase_person(conn, "p-7")
        figures["erase_s"] = time.perf_counter() - started
        figures["erase_events"] = done.rows_anonymised.get("events", 0)
        reader = Principal("p-admin", frozenset({"admin"}))
        started = time.perf_counter()
        for n in range(READS):
            await access_audit.record_read(engine, reader, "person.private", subject=f"p-{n}")
        figures["record_read_ms"] = (time.perf_counter() - started) / READS * 1000
    finally:
        await engine.dispose()
    check(figures, "export_s", "<", 5.0, " s")
    check(figures, "erase_s", "<", 10.0, " s")
    check(figures, "record_read_ms", "<", 20.0, " ms")
    ok = figures["export_events"] == figures["erase_events"] == EVENTS // PEOPLE
    figures["verdict"] = "PASS" if ok else "FAIL"
    return figures


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_measure(Path(tmp)))


if __name__ == "__main__":
    figures = run()
    for key, value in figures.items():
        print(f"{key:<32} {value}")
    sys.exit(0 if figures["verdict"] == "PASS" else 1)
