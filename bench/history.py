"""Benchmark: the demo's history backfill, from start to every event in the database.

Method: the demo's own parts on loopback (the embedded amqtt broker, the cloud
app with its ingestion on SQLite, the sample layout and roster), then the
demo's three weeks of simulated history (launch/demo_history.py) published at
the demo's pace. Figures: how many messages and events, how long generating
and publishing took, and how long until the last event was committed (polled
in the events table). Then the same history again, which must add nothing
(exactly-once): the events and bookings counts are compared.
Run: `python -m bench history`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.targets import check

# The brief of the demo: the history is there within about a minute.
TARGET_S = 60.0
TIMEOUT_S = 180.0


async def _measure(data: Path) -> dict[str, Any]:
    import httpx
    from sqlalchemy import func, select

    from cloud.buildings.layout import SAMPLE_LAYOUT, load_layout
    from cloud.db.tables import BOOKINGS, EVENTS
    from cloud.people.auth import mint_dev_token
    from cloud.settings import CloudSettings
    from launch.demo import roster_for_today, roster_path
    from launch.demo_history import DEMO_RATE, backfill, demo_history
    from launch.embedded_broker import embedded_broker
    from launch.webapp import create_app

    layout = load_layout(SAMPLE_LAYOUT)
    zone = ZoneInfo(layout.site.timezone)
    async with embedded_broker() as mqtt_url:
        settings = CloudSettings(
            database_url=f"sqlite+aiosqlite:///{data}/cloud.sqlite3",
            mqtt_url=mqtt_url,
            telemetry_sqlite_path=data / "telemetry.sqlite3",
            snapshot_key_path=data / "snapshot-signing-key.pem",
            layout_file=SAMPLE_LAYOUT,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            token = mint_dev_token(settings, "bench", ["admin"])
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://cloud",
                headers={"Authorization": f"Bearer {token}"},
            ) as http:
                roster, badges = roster_for_today(
                    roster_path().read_text(encoding="utf-8"), datetime.now(zone)
                )
                r = await http.post(
                    "/api/v1/people/import",
                    content=roster.encode(),
                    headers={"content-type": "text/csv"},
                )
                r.raise_for_status()
            engine = app.state.engine

            async def counts() -> tuple[int, int]:
                async with engine.connect() as conn:
                    events = await conn.scalar(
                        select(func.count())
                        .select_from(EVENTS)
                        .where(EVENTS.c.message_id.like("hist-%"))
                    )
                    bookings = await conn.scalar(select(func.count()).select_from(BOOKINGS))
                return int(events or 0), int(bookings or 0)

            while not app.state.ingestor.connected:  # noqa: ASYNC110 - a property, no event
                await asyncio.sleep(0.05)
            began = time.monotonic()
            days, messages = demo_history(layout, list(badges.values()), datetime.now(zone).date())
            generated = time.monotonic() - began
            sent = await backfill(mqtt_url, messages, rate=DEMO_RATE)
            published = time.monotonic() - began
            deadline = began + TIMEOUT_S
            while (await counts())[0] < sent.events and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            landed = time.monotonic() - began
            first = await counts()
            await backfill(mqtt_url, messages, rate=DEMO_RATE, client_id="ruang-bench-again")
            await asyncio.sleep(3.0)  # let the repeats reach the writer
            second = await counts()
    figures: dict[str, Any] = {
        "working_days": len(days),
        "messages": sent.messages,
        "events": sent.events,
        "events_committed": first[0],
        "bookings_from_history": first[1],
        "generate_s": round(generated, 2),
        "publish_s": round(published, 2),
        "all_events_committed_s": round(landed, 2),
        "second_backfill_added_rows": (second[0] - first[0]) + (second[1] - first[1]),
    }
    check(figures, "all_events_committed_s", "<", TARGET_S, " s")
    check(figures, "second_backfill_added_rows", "<", 1)
    return figures


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ruang-bench-history-") as tmp:
        return asyncio.run(_measure(Path(tmp)))
