"""Every notification kind renders in Bahasa Indonesia and English, self-contained;
the SMTP URL forms parse; the seat reminder hook writes one notification per reservation."""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from cloud.db.engine import make_engine, migrate
from cloud.db.tables import NOTIFICATIONS, PEOPLE
from cloud.notifications.email import parse_smtp_url
from cloud.notifications.templates import KINDS, REASONS, render
from cloud.transport.seat_notices import reminder_due, seat_reminder

SAMPLE = {
    "desk_id": "L1-D01",
    "starts_at": "2026-12-08T01:00:00+00:00",
    "ends_at": "2026-12-08T05:00:00+00:00",
    "deadline_at": "2026-12-08T01:15:00+00:00",
    "reason": "away",
    "visitor": "Tamu <b>Satu</b>",
    "arrived_at": "2026-12-08T02:00:00+00:00",
    "host": "Ayu",
    "place": "Gedung Otorita",
    "room": "R-Rapat-1",
    "release_at": "2026-12-08T01:10:00+00:00",
    "route": "K1",
    "stop": "Terminal KIPP",
    "departs_at": "2026-12-08T22:30:00+00:00",
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_in_both_languages_without_outside_resources(kind: str) -> None:
    indonesian, english = render(kind, SAMPLE, "id"), render(kind, SAMPLE, "en")
    assert indonesian.subject != english.subject and indonesian.text != english.text
    for rendered in (indonesian, english):
        assert "{" not in rendered.subject + rendered.text
        assert not re.search(r"(src|href)=|https?://|<script|@import", rendered.html)
        # Data is text, never markup.
        assert "<b>" not in rendered.html
    assert '<html lang="id">' in indonesian.html and '<html lang="en">' in english.html


def test_times_show_in_the_sites_zone_and_reasons_in_words() -> None:
    text = render("booking_released", {**SAMPLE, "timezone": "Asia/Jakarta"}, "id").text
    assert "08-12-2026 08.00 WIB" in text
    assert REASONS["away"]["id"] in text
    assert REASONS["away"]["en"] in render("booking_released", SAMPLE, "en").text


def test_an_unknown_language_falls_back_to_indonesian() -> None:
    assert render("booking_confirmed", SAMPLE, "fr") == render("booking_confirmed", SAMPLE, "id")


def test_smtp_urls_name_host_port_tls_mode_and_login() -> None:
    plain = parse_smtp_url("smtp://127.0.0.1:2525")
    assert (plain.host, plain.port, plain.start_tls, plain.use_tls) == (
        "127.0.0.1",
        2525,
        False,
        False,
    )
    relay = parse_smtp_url("smtp+starttls://ruang%40ikn.go.id:p%3Ass@mail.ikn.go.id")
    assert (relay.port, relay.start_tls, relay.username, relay.password) == (
        587,
        True,
        "ruang@ikn.go.id",
        "p:ss",
    )
    assert "p:ss" not in relay.describe()
    assert parse_smtp_url("smtps://mail.ikn.go.id").port == 465
    for bad in ("http://mail", "smtp://", "mail.ikn.go.id:25"):
        with pytest.raises(ValueError):
            parse_smtp_url(bad)


async def test_the_seat_reminder_hook_reminds_once_per_reservation() -> None:
    departs = datetime(2026, 12, 8, 22, 30, tzinfo=UTC)
    lead = timedelta(minutes=30)
    assert not reminder_due(departs, departs - timedelta(minutes=31), lead)
    assert reminder_due(departs, departs - timedelta(minutes=5), lead)
    assert not reminder_due(departs, departs, lead)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/seats.sqlite3"
        await migrate(url)
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(PEOPLE).values(id="p-ayu", kind="asn", name="Ayu", role="asn")
                )
            for _ in range(2):
                async with engine.begin() as conn:
                    await seat_reminder(
                        conn,
                        reservation_id=9,
                        person_id="p-ayu",
                        route="K1",
                        stop="Terminal KIPP",
                        departs_at=departs,
                        timezone="Asia/Makassar",
                    )
            async with engine.connect() as conn:
                assert await conn.scalar(select(func.count()).select_from(NOTIFICATIONS)) == 1
                data = await conn.scalar(select(NOTIFICATIONS.c.data))
        finally:
            await engine.dispose()
    assert "09-12-2026 06:30 WITA" in render("seat_reminder", data, "en").text
