"""In-app notifications through the API, fed by the real desk flows: booking confirmed,
reminder before the no-show deadline, released (no-show, released at the desk) with its reason."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import SecretStr

from cloud.bookings.autorelease import release_no_shows
from cloud.bookings.checkins import apply_checkout, check_in_booking, walk_up
from cloud.bookings.reminders import remind_before_deadline
from cloud.settings import CloudSettings
from launch.smtp_sink import SmtpSink
from ruang import contract
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud, eventually, start_cloud
from tests.helpers import auth_headers


async def test_booking_flows_reach_the_persons_list_and_read_state(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    engine = cloud.app.state.engine
    ayu = auth_headers(settings, "p-ayu", ("asn",))
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D01", "p-ayu", slot(1)))
    assert r.status_code == 201, r.text
    first = r.json()
    start = datetime.fromisoformat(first["starts_at"].replace("Z", "+00:00"))

    # Reminder 10 min before the deadline (start + 15 min grace), once however often the job runs.
    lead = timedelta(minutes=10)
    assert await remind_before_deadline(engine, start, lead=lead) == 0
    for minute in (6, 8, 14):
        assert (
            await remind_before_deadline(engine, start + timedelta(minutes=minute), lead=lead) == 1
        )
    assert await release_no_shows(engine, start + timedelta(minutes=16)) == ["L1-D01"]

    r = await cloud.http.get("/api/v1/me/notifications", headers=ayu)
    assert r.status_code == 200
    body = r.json()
    assert [n["kind"] for n in body["items"]] == [
        "booking_released",
        "booking_reminder",
        "booking_confirmed",
    ]
    assert body["unread"] == 3
    released = body["items"][0]
    assert "L1-D01" in released["title"]
    assert "tidak ada check-in sampai batas waktu" in released["body"]

    # Marked read: the bell's count follows; someone else's id is 404.
    r = await cloud.http.post(f"/api/v1/me/notifications/{released['id']}/read", headers=ayu)
    assert r.status_code == 200 and r.json() == {"unread": 2}
    budi = auth_headers(settings, "p-budi", ("asn",))
    r = await cloud.http.post(f"/api/v1/me/notifications/{released['id']}/read", headers=budi)
    assert r.status_code == 404
    r = await cloud.http.get("/api/v1/me/notifications", params={"unread": True}, headers=ayu)
    assert [n["kind"] for n in r.json()["items"]] == ["booking_reminder", "booking_confirmed"]

    # English from now on: the same entries read in English.
    r = await cloud.http.put(
        "/api/v1/me/notification-preferences",
        json={"language": "en", "email_enabled": True, "email_off_kinds": ["booking_reminder"]},
        headers=ayu,
    )
    assert r.status_code == 200, r.text
    assert r.json()["email_off_kinds"] == ["booking_reminder"]
    assert "seat_reminder" in r.json()["kinds"]
    r = await cloud.http.get("/api/v1/me/notification-preferences", headers=ayu)
    assert r.json()["language"] == "en"
    r = await cloud.http.get("/api/v1/me/notifications", headers=ayu)
    assert "nobody checked in before the deadline" in r.json()["items"][0]["body"]
    r = await cloud.http.put(
        "/api/v1/me/notification-preferences",
        json={"language": "en", "email_off_kinds": ["no_such_kind"]},
        headers=ayu,
    )
    assert r.status_code == 422

    r = await cloud.http.post("/api/v1/me/notifications/read-all", headers=ayu)
    assert r.json() == {"marked": 2}
    r = await cloud.http.get("/api/v1/me/notifications/unread-count", headers=ayu)
    assert r.json() == {"unread": 0}

    # Released at the desk by the edge: told with that reason.
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D02", "p-ayu", slot(2)))
    second = r.json()
    at = datetime.fromisoformat(second["starts_at"].replace("Z", "+00:00"))
    async with engine.begin() as conn:
        assert await check_in_booking(conn, second["id"], at, "ikn-node-1") is not None
        checkout = contract.CheckOut(
            node="ikn-node-1",
            desk="L1-D02",
            reason="released",
            ts=(at + timedelta(minutes=30)).timestamp(),
        )
        assert await apply_checkout(conn, checkout, at)
    r = await cloud.http.get("/api/v1/me/notifications", params={"unread": True}, headers=ayu)
    kinds = [(n["kind"], n["body"]) for n in r.json()["items"]]
    assert kinds[0][0] == "booking_released" and "released at the desk" in kinds[0][1]


async def test_the_delivery_log_is_for_admins_only(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D01", "p-ayu", slot(1)))
    assert r.status_code == 201
    r = await cloud.http.get("/api/v1/notifications/deliveries")
    assert r.status_code == 200
    [row] = r.json()
    assert (row["kind"], row["person_id"], row["channel"]) == (
        "booking_confirmed",
        "p-ayu",
        "email",
    )
    assert "title" not in row and "body" not in row
    r = await cloud.http.get(
        "/api/v1/notifications/deliveries",
        headers=auth_headers(settings, "p-citra", ("facility_manager",)),
    )
    assert r.status_code == 403


async def test_the_cloud_app_mails_a_booking_confirmation_through_its_smtp_server(
    settings: CloudSettings, smtp: SmtpSink
) -> None:
    async with start_cloud(settings.model_copy(update={"smtp_url": SecretStr(smtp.url)})) as cloud:
        assert cloud.app.state.notifications.email_enabled
        await seed(cloud, settings)
        r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D01", "p-ayu", slot(1)))
        assert r.status_code == 201, r.text

        async def logged_sent() -> bool:
            # The log is written after the server's 250, so this comes last.
            r = await cloud.http.get("/api/v1/notifications/deliveries", params={"status": "sent"})
            return [d["kind"] for d in r.json()] == ["booking_confirmed"]

        await eventually(logged_sent)
    [got] = smtp.messages
    assert got.rcpt_tos == ["ayu@example.go.id"]
    assert got.message["Subject"] == "Pemesanan meja L1-D01 dikonfirmasi"


async def test_a_booking_displaced_by_an_offline_walk_up_is_told_why(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D03", "p-ayu", slot(1)))
    held = r.json()
    at = datetime.fromisoformat(held["starts_at"].replace("Z", "+00:00"))
    async with cloud.app.state.engine.begin() as conn:
        created, changed = await walk_up(conn, "L1-D03", "p-budi", at, at, "ikn-node-1")
        assert created is not None and changed
    ayu = auth_headers(settings, "p-ayu", ("asn",))
    r = await cloud.http.get("/api/v1/me/notifications", params={"lang": "en"}, headers=ayu)
    newest = r.json()["items"][0]
    assert newest["kind"] == "booking_released"
    assert "someone checked in at the desk while it was offline" in newest["body"]


async def test_concurrent_bookings_each_get_one_confirmation(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    # On SQLite concurrent bookings are inserted in one batch (cloud/bookings/store.py).
    await seed(cloud, settings)
    answers = await asyncio.gather(
        *(
            cloud.http.post("/api/v1/bookings", json=booking(f"L1-D0{d}", "p-ayu", slot(d)))
            for d in range(1, 7)
        )
    )
    assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
    r = await cloud.http.get(
        "/api/v1/me/notifications", headers=auth_headers(settings, "p-ayu", ("asn",))
    )
    confirmed = [n["title"] for n in r.json()["items"] if n["kind"] == "booking_confirmed"]
    assert sorted(confirmed) == [f"Pemesanan meja L1-D0{d} dikonfirmasi" for d in range(1, 7)]
