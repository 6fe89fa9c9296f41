"""Visitor check-in -> host notified: reception's check-in request sent -> the host's email
accepted by a real SMTP server (aiosmtpd on loopback, launch/smtp_sink.py).

The whole path runs: the cloud app with its lifespan (migrations, Mosquitto-connected
ingestion, the notification dispatcher at its default 0.5 s poll), the HTTP route
`POST /api/v1/reception/checkin` with a scanned pass token, the check-in transaction that
writes the `visitor_arrived` notification, the dispatcher rendering and sending it.
Check-ins arrive one by one at a steady pace, as guests do at a desk. Target: p99 < 2 s.

    python -m bench visitors
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from cloud.app import create_app
from cloud.buildings.layout import SAMPLE_LAYOUT, apply_layout, load_layout
from cloud.db.tables import VISITS
from cloud.people.auth import mint_dev_token
from cloud.settings import CloudSettings
from cloud.visitors.passes import PassKeys
from launch import devservers
from launch.smtp_sink import SmtpSink

TARGET_P99_S = 2.0
SITE = "ikn-kipp"
ROSTER = (
    "id,kind,name,role,email,site_id\np-host,asn,Hana Pratiwi,asn,hana@example.go.id,ikn-kipp\n"
)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(count: int, pace_s: float, workdir: Path) -> dict[str, Any]:
    broker = devservers.Mosquitto(port=devservers.free_port(), workdir=workdir / "broker")
    broker.workdir.mkdir()
    broker.start()
    sent: dict[str, float] = {}
    try:
        with SmtpSink() as smtp:
            settings = CloudSettings(
                database_url=f"sqlite+aiosqlite:///{workdir}/bench.sqlite3",
                mqtt_url=broker.url,
                telemetry_sqlite_path=workdir / "telemetry.sqlite3",
                auth_dev_key_path=workdir / "dev-key.pem",
                snapshot_key_path=workdir / "snapshot-key.pem",
                smtp_url=SecretStr(smtp.url),
            )
            app = create_app(settings)
            admin = {"Authorization": "Bearer " + mint_dev_token(settings, "bench", ["admin"])}
            desk = {"Authorization": "Bearer " + mint_dev_token(
                settings, "p-reception", ["reception"], sites=[SITE])}  # fmt: skip
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://cloud"
                ) as http,
            ):
                await apply_layout(app.state.engine, load_layout(SAMPLE_LAYOUT))
                r = await http.post("/api/v1/people/import", content=ROSTER,
                                    headers={"content-type": "text/csv", **admin})  # fmt: skip
                r.raise_for_status()
                keys: PassKeys = app.state.visitor_pass_keys
                start = datetime.now(UTC) - timedelta(minutes=5)
                tokens: dict[str, str] = {}
                for i in range(count):
                    name = f"Tamu {i:05d}"
                    r = await http.post("/api/v1/visits", headers=admin, json={
                        "guest_name": name, "guest_phone": "+62811000000",
                        "host_person_id": "p-host", "starts_at": start.isoformat(),
                        "ends_at": (start + timedelta(hours=3)).isoformat(),
                    })  # fmt: skip
                    r.raise_for_status()
                    visit = r.json()
                    async with app.state.engine.connect() as conn:
                        code = await conn.scalar(
                            select(VISITS.c.pass_code).where(VISITS.c.id == visit["id"])
                        )
                    tokens[name] = keys.token(visit["id"], str(code))
                for name, token in tokens.items():
                    sent[name] = time.time()
                    r = await http.post("/api/v1/reception/checkin", headers=desk,
                                        json={"code": token})  # fmt: skip
                    r.raise_for_status()
                    await asyncio.sleep(pace_s)
                # Bounded: a dispatcher that never delivers shows as "delivered" < count.
                for _ in range(1200):
                    if len([m for m in smtp.messages if "hana@" in m.rcpt_tos[0]]) >= count:
                        break
                    await asyncio.sleep(0.05)
            latencies = []
            for got in smtp.messages:
                if got.rcpt_tos != ["hana@example.go.id"]:
                    continue
                text = got.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                name = text.split(" sudah check-in", 1)[0]
                latencies.append(got.received_at - sent[name])
    finally:
        broker.stop()
    delivered = len(latencies)
    p99 = _pct(latencies, 0.99) if latencies else float("inf")
    return {
        "checkins": count,
        "hosts_notified": delivered,
        "checkin_to_host_email_p50_s": _pct(latencies, 0.5) if latencies else float("inf"),
        "checkin_to_host_email_p99_s": p99,
        "checkin_to_host_email_max_s": max(latencies) if latencies else float("inf"),
        "checkin_to_host_email_mean_s": statistics.fmean(latencies) if latencies else float("inf"),
        "target_p99_s": TARGET_P99_S,
        "verdict": "PASS" if delivered == count and p99 < TARGET_P99_S else "FAIL",
    }


def run(count: int = 200, pace_s: float = 0.05) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_measure(count, pace_s, Path(tmp)))


if __name__ == "__main__":
    figures = run()
    for key, value in figures.items():
        print(f"{key:<32} {value}")
    sys.exit(0 if figures["verdict"] == "PASS" else 1)
