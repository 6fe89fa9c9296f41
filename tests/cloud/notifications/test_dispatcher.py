"""The outbox and dispatcher against a real SMTP server: sent once per business event, in the
person's language, honouring preferences, and nothing lost while the server is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.engine import make_engine, migrate
from cloud.db.tables import NOTIFICATION_DELIVERIES, NOTIFICATIONS, PEOPLE
from cloud.notifications import preferences
from cloud.notifications.dispatcher import NotificationDispatcher
from cloud.notifications.outbox import NotificationRefused, notify, notify_address
from cloud.notifications.retention import purge_notifications
from cloud.notifications.schemas import PreferencesUpdate
from cloud.settings import CloudSettings
from launch.smtp_sink import SmtpSink

BOOKED = {
    "desk_id": "D-101",
    "starts_at": "2026-12-08T01:00:00+00:00",
    "ends_at": "2026-12-08T05:00:00+00:00",
}


class Clock:
    def __init__(self) -> None:
        # Rows are stamped with the real time when written: start just after it.
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate(database_url)
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            insert(PEOPLE),
            [
                {
                    "id": "p-ayu",
                    "kind": "asn",
                    "name": "Ayu",
                    "role": "asn",
                    "email": "ayu@example.go.id",
                },
                {
                    "id": "p-budi",
                    "kind": "asn",
                    "name": "Budi",
                    "role": "asn",
                    "email": "budi@example.go.id",
                },
                {"id": "p-noemail", "kind": "asn", "name": "X", "role": "asn", "email": None},
            ],
        )
    try:
        yield engine
    finally:
        await engine.dispose()


def dispatcher(
    engine: AsyncEngine, smtp: SmtpSink | None, clock: Clock, **overrides: object
) -> NotificationDispatcher:
    settings = CloudSettings(
        database_url="sqlite+aiosqlite:///:memory:",
        smtp_url=smtp.url if smtp is not None else None,
        smtp_from="Ruang <noreply@ruang.example>",
        smtp_timeout_s=5,
        **overrides,  # type: ignore[arg-type]
    )
    return NotificationDispatcher(settings, engine, clock=clock, rand=lambda: 1.0)


async def statuses(engine: AsyncEngine) -> list[tuple[str, int, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                NOTIFICATION_DELIVERIES.c.status,
                NOTIFICATION_DELIVERIES.c.attempts,
                NOTIFICATION_DELIVERIES.c.last_error,
            ).order_by(NOTIFICATION_DELIVERIES.c.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_a_notification_is_mailed_in_indonesian_with_text_and_html(
    engine: AsyncEngine, smtp: SmtpSink
) -> None:
    clock = Clock()
    async with engine.begin() as conn:
        await notify(
            conn,
            person_id="p-ayu",
            kind="booking_confirmed",
            data=BOOKED,
            dedup_key="booking_confirmed:1",
        )
    await dispatcher(engine, smtp, clock).deliver_due()
    [got] = smtp.messages
    assert got.rcpt_tos == ["ayu@example.go.id"]
    msg = got.message
    assert msg["Subject"] == "Pemesanan meja D-101 dikonfirmasi"
    assert msg["Content-Language"] == "id"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # 01:00 UTC is 09.00 WITA: shown in the site's zone, the Indonesian way.
    assert "08-12-2026 09.00 WITA" in text
    assert "<p>Meja D-101 sudah dipesan" in html and "http" not in html.lower()
    assert await statuses(engine) == [("sent", 1, None)]


async def test_the_same_dedup_key_sends_one_email(engine: AsyncEngine, smtp: SmtpSink) -> None:
    for _ in range(3):
        async with engine.begin() as conn:
            await notify(
                conn,
                person_id="p-ayu",
                kind="booking_confirmed",
                data=BOOKED,
                dedup_key="booking_confirmed:7",
            )
    sender = dispatcher(engine, smtp, Clock())
    await sender.deliver_due()
    await sender.deliver_due()
    assert len(smtp.messages) == 1
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(NOTIFICATIONS)) == 1


async def test_a_rolled_back_change_notifies_nobody(engine: AsyncEngine, smtp: SmtpSink) -> None:
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await notify(conn, person_id="p-ayu", kind="booking_confirmed", data=BOOKED)
            raise RuntimeError("the booking failed")
    await dispatcher(engine, smtp, Clock()).deliver_due()
    assert smtp.messages == [] and await statuses(engine) == []


async def test_preferences_pick_the_language_and_switch_email_off_per_kind(
    engine: AsyncEngine, smtp: SmtpSink
) -> None:
    async with engine.begin() as conn:
        await preferences.save(
            conn, "p-budi", PreferencesUpdate(language="en", email_off_kinds=["booking_reminder"])
        )
        await notify(conn, person_id="p-budi", kind="booking_confirmed", data=BOOKED)
        await notify(
            conn,
            person_id="p-budi",
            kind="booking_reminder",
            data={**BOOKED, "deadline_at": "2026-12-08T01:15:00+00:00"},
        )
        await notify(conn, person_id="p-noemail", kind="booking_confirmed", data=BOOKED)
    await dispatcher(engine, smtp, Clock()).deliver_due()
    [got] = smtp.messages
    assert got.message["Subject"] == "Desk D-101 booked"
    assert "from 08-12-2026 09:00 WITA" in got.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert await statuses(engine) == [
        ("sent", 1, None),
        ("skipped", 0, "email switched off in the person's preferences"),
        ("skipped", 0, "the person has no email address"),
    ]


async def test_without_smtp_email_is_skipped_and_in_app_remains(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async with engine.begin() as conn:
        await notify(conn, person_id="p-ayu", kind="booking_confirmed", data=BOOKED)
    sender = dispatcher(engine, None, Clock())
    assert not sender.email_enabled
    sender.start()  # says so at start-up
    await sender.stop()
    assert "no RUANG_SMTP_URL, email is off (in-app only)" in caplog.text
    await sender.deliver_due()
    assert await statuses(engine) == [("skipped", 0, "email channel disabled (no RUANG_SMTP_URL)")]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(NOTIFICATIONS)) == 1


async def test_a_down_smtp_server_loses_nothing_and_delivery_resumes(
    engine: AsyncEngine, smtp: SmtpSink
) -> None:
    clock = Clock()
    sender = dispatcher(engine, smtp, clock, notify_backoff_base_s=30)
    async with engine.begin() as conn:
        await notify(conn, person_id="p-ayu", kind="booking_confirmed", data=BOOKED, dedup_key="a")
    await sender.deliver_due()
    assert len(smtp.messages) == 1
    smtp.stop()  # the server goes away mid-way
    async with engine.begin() as conn:
        for i in range(5):
            await notify(
                conn,
                person_id="p-budi",
                kind="booking_confirmed",
                data={**BOOKED, "desk_id": f"D-{i}"},
                dedup_key=f"b{i}",
            )
    next_due = await sender.deliver_due()
    failed = (await statuses(engine))[1:]
    assert [s for s, _, _ in failed] == ["pending"] * 5
    assert all(a == 1 and e and "onnect" in e for _, a, e in failed), failed
    # Backoff: nothing is retried before its time, even though the pass is repeated.
    assert next_due == clock.now + timedelta(seconds=30)
    await sender.deliver_due()
    assert all(a == 1 for _, a, _ in (await statuses(engine))[1:])

    smtp.start()  # back on the same port
    clock.now += timedelta(seconds=31)
    await sender.deliver_due()
    subjects = sorted(r.message["Subject"] for r in smtp.messages[1:])
    assert subjects == [f"Pemesanan meja D-{i} dikonfirmasi" for i in range(5)]
    assert [(s, a) for s, a, _ in await statuses(engine)] == [("sent", 1)] + [("sent", 2)] * 5


async def test_a_refusing_server_is_retried_then_given_up(
    engine: AsyncEngine, smtp: SmtpSink
) -> None:
    clock = Clock()
    sender = dispatcher(engine, smtp, clock, notify_max_attempts=3, notify_backoff_base_s=1)
    smtp.refuse = True
    async with engine.begin() as conn:
        await notify(conn, person_id="p-ayu", kind="booking_confirmed", data=BOOKED)
    for _ in range(3):
        await sender.deliver_due()
        clock.now += timedelta(minutes=11)
    [(status, attempts, error)] = await statuses(engine)
    assert (status, attempts) == ("gave_up", 3) and error and "451" in error
    assert smtp.messages == []


async def test_a_guest_address_gets_the_email_with_its_attachment(
    engine: AsyncEngine, smtp: SmtpSink
) -> None:
    ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    async with engine.begin() as conn:
        await notify_address(
            conn,
            address="tamu@example.com",
            language="en",
            kind="visitor_invitation",
            data={
                "host": "Ayu",
                "place": "Gedung A",
                "starts_at": BOOKED["starts_at"],
                "ends_at": BOOKED["ends_at"],
            },
            attachments=[("visit.ics", "text/calendar", ics)],
        )
        await notify_address(
            conn,
            address="+62811000000",
            kind="visitor_invitation",
            data={
                "host": "Ayu",
                "place": "Gedung A",
                "starts_at": BOOKED["starts_at"],
                "ends_at": BOOKED["ends_at"],
            },
        )
    await dispatcher(engine, smtp, Clock()).deliver_due()
    [got] = smtp.messages
    assert got.rcpt_tos == ["tamu@example.com"]
    assert got.message["Subject"] == "Your visit to Gedung A"
    [part] = list(got.message.iter_attachments())
    assert part.get_filename() == "visit.ics" and "VCALENDAR" in part.get_content()
    assert [s for s, _, _ in await statuses(engine)] == ["sent", "skipped"]


async def test_notify_refuses_unknown_kinds_and_missing_fields(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        with pytest.raises(NotificationRefused, match="unknown"):
            await notify(conn, person_id="p-ayu", kind="nope", data={})
        with pytest.raises(NotificationRefused, match="ends_at"):
            await notify(
                conn,
                person_id="p-ayu",
                kind="booking_confirmed",
                data={"desk_id": "D", "starts_at": "x"},
            )


async def test_retention_purges_settled_notifications_only(
    engine: AsyncEngine, smtp: SmtpSink
) -> None:
    clock = Clock()
    async with engine.begin() as conn:
        await notify(conn, person_id="p-ayu", kind="booking_confirmed", data=BOOKED, dedup_key="x")
    await dispatcher(engine, smtp, Clock()).deliver_due()
    smtp.stop()
    async with engine.begin() as conn:
        await notify(conn, person_id="p-budi", kind="booking_confirmed", data=BOOKED, dedup_key="y")
    await dispatcher(engine, smtp, clock).deliver_due()  # fails: stays pending
    later = datetime.now(UTC) + timedelta(days=91)
    assert await purge_notifications(engine, later, 90) == 1
    assert [s for s, _, _ in await statuses(engine)] == ["pending"]
    assert await purge_notifications(engine, datetime.now(UTC), 90) == 0


async def test_the_dispatcher_task_delivers_after_commit(
    engine: AsyncEngine, smtp: SmtpSink
) -> None:
    sender = dispatcher(engine, smtp, Clock(), notify_poll_s=0.05)
    sender._clock = lambda: datetime.now(UTC)
    sender.start()
    try:
        async with engine.begin() as conn:
            await notify(conn, person_id="p-ayu", kind="booking_confirmed", data=BOOKED)
        for _ in range(300):
            if smtp.messages:
                break
            await asyncio.sleep(0.05)
    finally:
        await sender.stop()
    assert len(smtp.messages) == 1


async def test_the_running_dispatcher_waits_out_a_server_outage(
    engine: AsyncEngine, smtp: SmtpSink
) -> None:
    sender = dispatcher(engine, smtp, Clock(), notify_poll_s=0.05, notify_backoff_base_s=0.05)
    sender._clock = lambda: datetime.now(UTC)
    smtp.stop()
    sender.start()
    try:
        async with engine.begin() as conn:
            for i in range(5):
                await notify(
                    conn,
                    person_id="p-ayu",
                    kind="booking_confirmed",
                    data={**BOOKED, "desk_id": f"D-{i}"},
                    dedup_key=f"o{i}",
                )
        for _ in range(600):  # until every delivery has failed at least once
            if all(a >= 1 and s == "pending" for s, a, _ in await statuses(engine)):
                break
            await asyncio.sleep(0.02)
        assert all(a >= 1 and s == "pending" for s, a, _ in await statuses(engine))
        smtp.start()
        for _ in range(600):  # until the log says sent (it is written after the server's 250)
            if {s for s, _, _ in await statuses(engine)} == {"sent"}:
                break
            await asyncio.sleep(0.05)
    finally:
        await sender.stop()
    assert sorted(r.message["Subject"] for r in smtp.messages) == [
        f"Pemesanan meja D-{i} dikonfirmasi" for i in range(5)
    ]
    assert {s for s, _, _ in await statuses(engine)} == {"sent"}


async def test_a_malformed_address_gives_up_at_once_without_holding_up_the_rest(
    engine: AsyncEngine, smtp: SmtpSink
) -> None:
    data = {
        "host": "Ayu",
        "place": "Gedung A",
        "starts_at": BOOKED["starts_at"],
        "ends_at": BOOKED["ends_at"],
    }
    async with engine.begin() as conn:
        await notify_address(
            conn, address="tamu@@example.com", kind="visitor_invitation", data=data
        )
        await notify_address(conn, address="tamu@example.com", kind="visitor_invitation", data=data)
    await dispatcher(engine, smtp, Clock()).deliver_due()
    [(bad, attempts, error), sent] = await statuses(engine)
    assert (bad, attempts) == ("gave_up", 1) and error and "cannot build" in error
    assert sent[0] == "sent" and len(smtp.messages) == 1
