"""QR check-in: the printable code, its key, and what a scan does to bookings, map and LED."""

from __future__ import annotations

import asyncio

import aiomqtt
import segno

from cloud.bookings.qrcheckin import CheckinKeys
from cloud.settings import CloudSettings
from ruang import contract
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud
from tests.cloud.map_helpers import as_role, book_now, set_desk


def _keys(cloud: RunningCloud) -> CheckinKeys:
    keys: CheckinKeys = cloud.app.state.checkin_keys
    return keys


async def _desk(cloud: RunningCloud, desk: str) -> dict[str, object]:
    floor = "A1-L" + desk[1]
    r = await cloud.http.get(f"/api/v1/floors/{floor}/map")
    return next(d for d in r.json()["desks"] if d["id"] == desk)


async def test_qr_svg_encodes_the_signed_checkin_url(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    keys = _keys(cloud)
    url = keys.url("L1-D22")
    prefix = f"{settings.public_base_url}/checkin/L1-D22?k="
    assert url.startswith(prefix)
    key = url.removeprefix(prefix)
    assert len(key) == 16 and key == keys.key("L1-D22") != keys.key("L1-D21")
    assert keys.valid("L1-D22", key.upper()) and not keys.valid("L1-D21", key)

    r = await cloud.http.get("/api/v1/desks/L1-D22/qr.svg")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content
    # The QR code of exactly that URL, as segno renders it.
    assert r.content == keys.svg("L1-D22")
    assert segno.make(url, error="m", micro=False).version >= 1

    assert (await cloud.http.get("/api/v1/desks/nope/qr.svg")).status_code == 404
    for role in ("asn", "technician"):
        denied = await cloud.http.get(
            "/api/v1/desks/L1-D22/qr.svg", headers=as_role(settings, role, subject="p-ayu")
        )
        assert denied.status_code == 403


async def test_walk_up_by_qr_then_map_shows_checked_in_and_led_goes_green(
    cloud: RunningCloud, settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    await seed(cloud, settings)
    led_topic = contract.topic_for(
        contract.LedCommand(node="ikn-demo-l1", desk="L1-D22", r=0, g=0, b=0)
    )
    await publisher.subscribe(led_topic, qos=1)
    # The desk unit being offline does not matter to a QR check-in.
    await set_desk(cloud.app.state.engine, "L1-D22", unit_online=False)
    ayu = as_role(settings, "asn", subject="p-ayu")

    wrong = await cloud.http.post(
        "/api/v1/desks/L1-D22/checkin", json={"key": "x" * 16}, headers=ayu
    )
    assert wrong.status_code == 403
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert wrong.json()["title"] == "Wrong check-in code"
    other_desk_key = await cloud.http.post(
        "/api/v1/desks/L1-D22/checkin", json={"key": _keys(cloud).key("L1-D21")}, headers=ayu
    )
    assert other_desk_key.status_code == 403

    r = await cloud.http.post(
        "/api/v1/desks/L1-D22/checkin", json={"key": _keys(cloud).key("L1-D22")}, headers=ayu
    )
    assert r.status_code == 200, r.text
    booking = r.json()
    assert (booking["desk_id"], booking["person_id"], booking["status"], booking["walk_up"]) == (
        "L1-D22",
        "p-ayu",
        "checked_in",
        True,
    )
    await set_desk(cloud.app.state.engine, "L1-D22", unit_online=True)
    desk = await _desk(cloud, "L1-D22")
    assert (desk["state"], desk["occupant"]) == ("checked_in", "Ayu Lestari")

    async with asyncio.timeout(10):
        async for message in publisher.messages:
            _, led = contract.decode(message.topic.value, message.payload)
            assert isinstance(led, contract.LedCommand)
            assert (led.desk, led.r, led.g, led.b, led.pattern) == ("L1-D22", 0, 200, 0, "solid")
            break

    again = await cloud.http.post(
        "/api/v1/desks/L1-D22/checkin", json={"key": _keys(cloud).key("L1-D22")}, headers=ayu
    )
    assert again.status_code == 200 and again.json()["id"] == booking["id"]


async def test_own_booking_is_checked_in_someone_elses_is_refused(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    held = await book_now(cloud.http, "L1-D01", "p-citra")
    key = _keys(cloud).key("L1-D01")

    taken = await cloud.http.post(
        "/api/v1/desks/L1-D01/checkin",
        json={"key": key},
        headers=as_role(settings, "asn", subject="p-ayu"),
    )
    assert taken.status_code == 409
    assert taken.json()["title"] == "Desk booked by someone else"
    assert "booked by someone else until" in taken.json()["detail"]
    assert "Citra" not in taken.text

    mine = await cloud.http.post(
        "/api/v1/desks/L1-D01/checkin",
        json={"key": key},
        headers=as_role(settings, "facility_manager", subject="p-citra", sites=("ikn-kipp",)),
    )
    assert mine.status_code == 200, mine.text
    assert (mine.json()["id"], mine.json()["status"], mine.json()["walk_up"]) == (
        held["id"],
        "checked_in",
        False,
    )
    assert (await _desk(cloud, "L1-D01"))["state"] == "checked_in"


async def test_walk_up_rules_and_callers_without_a_person(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    keys = _keys(cloud)

    async def scan(desk: str, subject: str) -> int:
        r = await cloud.http.post(
            f"/api/v1/desks/{desk}/checkin",
            json={"key": keys.key(desk)},
            headers=as_role(settings, "asn", subject=subject),
        )
        return r.status_code

    assert await scan("L1-D24", "p-ayu") == 409  # out of service
    assert await scan("L1-D11", "p-ayu") == 403  # zone reserved for Kementerian PUPR
    assert await scan("L1-D11", "p-budi") == 200  # ... which is Budi's agency
    assert await scan("L1-D03", "nobody-in-the-roster") == 403
    assert await scan("L1-D03", "p-tamu") == 200  # a guest walks up to a reservable desk
