"""Notification latency: committed to the outbox -> its email accepted by the SMTP server.

This is the cloud's share of "visitor check-in -> host notified": the check-in
transaction writes the notification; the dispatcher (cloud/notifications/dispatcher.py,
default settings: 0.5 s poll) claims it, renders it and hands it to a real SMTP
server (aiosmtpd on loopback, launch/smtp_sink.py) which stamps its arrival.
Notifications are committed one by one at a steady pace, as check-ins arrive.
Target: p99 < 2 s.

    python -m bench notifications
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import insert

from bench.targets import check, failures
from cloud.db.engine import make_engine, migrate
from cloud.db.tables import PEOPLE
from cloud.notifications.dispatcher import NotificationDispatcher
from cloud.notifications.outbox import notify
from cloud.settings import CloudSettings
from launch.smtp_sink import SmtpSink

TARGET_P99_S = 2.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(count: int, pace_s: float, workdir: Path) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{workdir}/bench.sqlite3"
    await migrate(url)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            insert(PEOPLE).values(
                id="p-host", kind="asn", name="Host", role="asn", email="host@example.go.id"
            )
        )
    committed: dict[str, float] = {}
    with SmtpSink() as smtp:
        settings = CloudSettings(database_url=url, smtp_url=SecretStr(smtp.url))
        dispatcher = NotificationDispatcher(settings, engine)
        dispatcher.start()
        try:
            for i in range(count):
                visitor = f"Tamu {i:05d}"
                async with engine.begin() as conn:
                    await notify(
                        conn,
                        person_id="p-host",
                        kind="visitor_arrived",
                        data={"visitor": visitor, "arrived_at": "2026-12-07T01:00:00+00:00"},
                        dedup_key=f"bench:{i}",
                    )
                committed[visitor] = time.time()
                await asyncio.sleep(pace_s)
            # Bounded: a dispatcher that never delivers shows as "delivered" < count.
            for _ in range(1200):
                if len(smtp.messages) >= count:
                    break
                await asyncio.sleep(0.05)
        finally:
            await dispatcher.stop()
            await engine.dispose()
        latencies = []
        for got in smtp.messages:
            text = got.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            visitor = text.split(" sudah check-in", 1)[0]
            latencies.append(got.received_at - committed[visitor])
    delivered = len(latencies)
    figures: dict[str, Any] = {
        "notifications": count,
        "delivered": delivered,
        "latency_p50_s": _pct(latencies, 0.5) if latencies else float("inf"),
        "latency_p99_s": _pct(latencies, 0.99) if latencies else float("inf"),
        "latency_max_s": max(latencies) if latencies else float("inf"),
        "latency_mean_s": statistics.fmean(latencies) if latencies else float("inf"),
    }
    # Nothing may be lost, and the p99 is the figure.
    check(figures, "delivered", ">=", count)
    check(figures, "latency_p99_s", "<", TARGET_P99_S, " s")
    return figures


def run(count: int = 300, pace_s: float = 0.02) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_measure(count, pace_s, Path(tmp)))


if __name__ == "__main__":
    figures = run()
    for key, value in figures.items():
        print(f"{key:<24} {value}")
    sys.exit(1 if failures(figures) else 0)
