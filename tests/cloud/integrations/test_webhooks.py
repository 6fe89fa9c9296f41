"""Webhook delivery to a real HTTP receiver on loopback, on SQLite and PostgreSQL.

The receiver is an http.server in a thread; it checks every signature itself
and can be told to fail a number of requests (or all of them).
"""

from __future__ import annotations

from typing import Any

from cloud.integrations.events import KINDS
from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud, eventually, start_cloud
from tests.cloud.integrations.conftest import SECRET, Receiver, fast, subscribe
from tests.helpers import eventually as eventually_value


async def book(cloud: RunningCloud, desk: str = "L1-D01", person: str = "p-ayu") -> int:
    r = await cloud.http.post("/api/v1/bookings", json=booking(desk, person, slot()))
    assert r.status_code == 201, r.text
    booking_id: int = r.json()["id"]
    return booking_id


async def log_of(cloud: RunningCloud, webhook_id: int) -> list[dict[str, Any]]:
    r = await cloud.http.get(f"/api/v1/webhooks/{webhook_id}/deliveries")
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


async def test_booking_created_is_delivered_signed(
    settings: CloudSettings, receiver: Receiver
) -> None:
    async with start_cloud(fast(settings)) as cloud:
        await seed(cloud, settings)
        hook = await subscribe(cloud, receiver.url, kinds=["booking.created"])
        assert hook["secret"] is None and set(hook["kinds"]) >= {"booking.created"}
        booking_id = await book(cloud)

        async def arrived() -> bool:
            return bool(receiver.delivered())

        await eventually(arrived)
        [req] = receiver.requests
        assert req["signature_ok"] and req["content_type"] == "application/json"
        assert req["event"] == "booking.created" == req["body"]["kind"]
        assert req["body"]["data"]["booking_id"] == booking_id
        assert req["body"]["data"]["status"] == "booked"

        async def logged() -> bool:
            rows = await log_of(cloud, hook["id"])
            return bool(rows) and rows[0]["delivered_at"] is not None

        await eventually(logged)
        [row] = await log_of(cloud, hook["id"])
        assert str(row["id"]) == req["delivery"] and row["event_id"] == req["body"]["id"]
        assert (row["attempts"], row["last_status"], row["gave_up"]) == (1, 200, False)


async def test_retried_until_the_receiver_accepts(
    settings: CloudSettings, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    async with start_cloud(fast(settings)) as cloud:
        await seed(cloud, settings)
        hook = await subscribe(cloud, receiver.url, kinds=["booking.created"])
        await book(cloud)

        async def delivered() -> bool:
            rows = await log_of(cloud, hook["id"])
            return bool(rows) and rows[0]["delivered_at"] is not None

        await eventually(delivered)
        [row] = await log_of(cloud, hook["id"])
        assert (row["attempts"], row["last_status"], row["last_error"]) == (3, 200, None)
        assert [r["answered"] for r in receiver.requests] == [500, 500, 200]
        # The same delivery each time: receivers dedupe on it.
        assert len({r["delivery"] for r in receiver.requests}) == 1
        assert all(r["signature_ok"] for r in receiver.requests)


async def test_gives_up_after_max_attempts(settings: CloudSettings, receiver: Receiver) -> None:
    receiver.fail_first = 1_000
    async with start_cloud(fast(settings, webhook_max_attempts=3)) as cloud:
        await seed(cloud, settings)
        # Only the booking's kind: node events of the seed may be delivered (and fail) too.
        hook = await subscribe(cloud, receiver.url, kinds=["booking.created"])
        await book(cloud)

        async def gave_up() -> bool:
            rows = await log_of(cloud, hook["id"])
            return bool(rows) and rows[0]["gave_up"]

        await eventually(gave_up)
        [row] = await log_of(cloud, hook["id"])
        assert (row["attempts"], row["last_status"], row["last_error"]) == (3, 500, "HTTP 500")
        assert row["delivered_at"] is None and row["next_attempt_at"] is None
        assert len(receiver.requests) == 3


async def test_only_subscribed_kinds_are_delivered(
    settings: CloudSettings, receiver: Receiver
) -> None:
    async with start_cloud(fast(settings)) as cloud:
        await seed(cloud, settings)
        hook = await subscribe(cloud, receiver.url, kinds=["booking.cancelled"])
        booking_id = await book(cloud)
        r = await cloud.http.post(f"/api/v1/bookings/{booking_id}/cancel")
        assert r.status_code == 200

        async def arrived() -> bool:
            return bool(receiver.delivered())

        await eventually(arrived)
        assert [r["event"] for r in receiver.requests] == ["booking.cancelled"]
        assert [row["kind"] for row in await log_of(cloud, hook["id"])] == ["booking.cancelled"]


async def test_subscription_api(settings: CloudSettings) -> None:
    async with start_cloud(fast(settings)) as cloud:
        await _subscription_api(cloud)


async def _subscription_api(cloud: RunningCloud) -> None:
    r = await cloud.http.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "secret": "short"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    r = await cloud.http.post("/api/v1/webhooks", json={"url": "ftp://example.org/x"})
    assert r.status_code == 422
    r = await cloud.http.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "kinds": ["booking.nope"]}
    )
    assert r.status_code == 422
    # The answer names the unknown kind and lists every known one.
    detail = r.text
    assert "'booking.nope'" in detail
    assert all(kind in detail for kind in KINDS), detail

    r = await cloud.http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 201
    created = r.json()
    assert len(created["secret"]) >= 16  # generated, shown once
    listed = (await cloud.http.get("/api/v1/webhooks")).json()
    assert [h["id"] for h in listed] == [created["id"]] and "secret" not in listed[0]
    assert listed[0]["active"] is True

    assert (await cloud.http.delete(f"/api/v1/webhooks/{created['id']}")).status_code == 204
    assert (await cloud.http.get("/api/v1/webhooks")).json()[0]["active"] is False
    r = await cloud.http.delete("/api/v1/webhooks/999999")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert (await cloud.http.get("/api/v1/webhooks/999999/deliveries")).status_code == 404


async def test_private_targets_are_refused_unless_allow_listed(settings: CloudSettings) -> None:
    async with start_cloud(settings) as cloud:
        for url in (
            "http://127.0.0.1:9/x",
            "http://localhost:9/x",
            "http://[::1]:9/x",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.5/x",
            "http://[::ffff:127.0.0.1]:9/x",
            "http://0.0.0.0:9/x",
        ):
            r = await cloud.http.post("/api/v1/webhooks", json={"url": url})
            assert r.status_code == 422, (url, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert "RUANG_WEBHOOK_ALLOWED_HOSTS" in r.json()["detail"]
        assert (await cloud.http.get("/api/v1/webhooks")).json() == []
    allowed = settings.model_copy(update={"webhook_allowed_hosts": ["127.0.0.0/8"]})
    async with start_cloud(allowed) as cloud:
        r = await cloud.http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x"})
        assert r.status_code == 201, r.text
        r = await cloud.http.post("/api/v1/webhooks", json={"url": "http://10.0.0.5/x"})
        assert r.status_code == 422, r.text


async def test_delivery_rechecks_the_target_and_sends_nothing_to_a_private_one(
    settings: CloudSettings, receiver: Receiver
) -> None:
    """A subscription whose host now resolves privately (DNS rebinding) gets nothing."""
    from datetime import UTC, datetime

    from cloud.integrations import webhooks

    async with start_cloud(fast(settings, webhook_allowed_hosts=[])) as cloud:
        await seed(cloud, settings)
        # Stored as if it had passed the check when subscribing.
        async with cloud.app.state.engine.begin() as conn:
            row = await webhooks.create_subscription(
                conn,
                url=receiver.url,
                secret=SECRET,
                # The booking's kind only: the seeded nodes' events are deliveries too.
                kinds=webhooks.valid_kinds(["booking.created"]),
                now=datetime.now(UTC),
            )
        await book(cloud)

        async def attempted() -> list[dict[str, Any]]:
            rows = await log_of(cloud, row.id)
            return [r for r in rows if r["attempts"] >= 1]

        [delivery] = await eventually_value(attempted, what="a delivery attempt")
        assert delivery["delivered_at"] is None and delivery["last_status"] is None
        assert delivery["last_error"].startswith("not sent: '127.0.0.1' resolves to 127.0.0.1")
        assert receiver.requests == []
