"""The door panel's API (key, names hidden, book now, check-in) and the calendar feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from sqlalchemy import update

from cloud.bookings.qrcheckin import CheckinKeys
from cloud.db.tables import SITES
from cloud.rooms.panel import CHECKIN_PREFIX, panel_key
from cloud.settings import CloudSettings
from cloud.transport.gtfs_export import sample_zip
from cloud.transport.gtfs_import import import_gtfs
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud
from tests.cloud.transport.seat_helpers import future_trip, reservation
from tests.helpers import auth_headers

from .room_helpers import ROOM_L, ROOM_S, at, body


def _keys(cloud: RunningCloud) -> CheckinKeys:
    keys: CheckinKeys = cloud.app.state.checkin_keys
    return keys


async def test_panel_needs_its_room_key_and_hides_other_agencies_meeting_titles(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    k = panel_key(_keys(cloud), ROOM_S)
    assert (
        await cloud.http.get(f"/api/v1/panel/{ROOM_S}", params={"k": "x" * 16})
    ).status_code == 404
    # The key of one room does not open another room's panel.
    assert (await cloud.http.get(f"/api/v1/panel/{ROOM_L}", params={"k": k})).status_code == 404

    now = datetime.now(UTC).replace(microsecond=0)
    when = (now.isoformat(), (now + timedelta(minutes=45)).isoformat())
    r = await cloud.http.post(
        "/api/v1/room-bookings", json=body(ROOM_S, "p-budi", when, title="Rapat rahasia PUPR")
    )
    assert r.status_code == 201
    panel = (await cloud.http.get(f"/api/v1/panel/{ROOM_S}", params={"k": k}, headers={})).json()
    assert panel["now"]["id"] == r.json()["id"] and panel["now"]["title"] is None
    assert "Rapat rahasia" not in str(panel) and "p-budi" not in str(panel)
    assert panel["free_until"] is None and panel["state"] in ("booked_empty", "booked_in_use")

    # The site may allow titles on its panels.
    async with cloud.app.state.engine.begin() as conn:
        await conn.execute(update(SITES).values(room_panel_titles=True))
    panel = (await cloud.http.get(f"/api/v1/panel/{ROOM_S}", params={"k": k})).json()
    assert panel["now"]["title"] == "Rapat rahasia PUPR"


async def test_with_no_meeting_left_today_the_panel_names_the_next_days_and_stays_free(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    k = panel_key(_keys(cloud), ROOM_L)
    r = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_L, "p-budi", at(days=2)))
    assert r.status_code == 201
    panel = (await cloud.http.get(f"/api/v1/panel/{ROOM_L}", params={"k": k})).json()
    assert panel["next"]["id"] == r.json()["id"] and panel["now"] is None
    # Free for the rest of today: the meeting is not today's.
    assert panel["free_until"] is None and panel["today"] == []


async def test_late_in_the_evening_the_panel_caches_the_meetings_just_after_midnight(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    from zoneinfo import ZoneInfo

    from cloud.rooms.panel import schedule

    await seed(cloud, settings)
    wita = ZoneInfo("Asia/Makassar")
    midnight = datetime.now(UTC).astimezone(wita).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) + timedelta(days=2)
    start = midnight + timedelta(minutes=10)
    r = await cloud.http.post(
        "/api/v1/room-bookings",
        json=body(ROOM_L, "p-budi", (start.isoformat(), (start + timedelta(hours=1)).isoformat())),
    )
    assert r.status_code == 201, r.text
    evening = midnight - timedelta(minutes=10)  # 23:50 WITA the day before
    async with cloud.app.state.engine.connect() as conn:
        panel = await schedule(conn, _keys(cloud), ROOM_L, evening)
    # Not today's, but cached with the day, and the room is free only until then.
    assert panel.today == [] and [m.id for m in panel.later] == [r.json()["id"]]
    assert panel.next is not None and panel.free_until == panel.next.starts_at
    async with cloud.app.state.engine.connect() as conn:
        morning = await schedule(conn, _keys(cloud), ROOM_L, midnight - timedelta(hours=15))
    # At 09:00 the day before it is more than 12 hours away: named as next, not cached.
    assert morning.later == [] and morning.next is not None and morning.free_until is None


async def test_book_now_from_the_panel_ends_and_check_in_by_panel_or_qr(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    k = panel_key(_keys(cloud), ROOM_L)
    r = await cloud.http.post(
        f"/api/v1/panel/{ROOM_L}/book-now", params={"k": k}, json={"minutes": 30}
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["walk_up"] and made["status"] == "checked_in" and made["person_id"] is None
    length = datetime.fromisoformat(made["ends_at"]) - datetime.fromisoformat(made["starts_at"])
    assert length == timedelta(minutes=30)
    bad = await cloud.http.post(
        f"/api/v1/panel/{ROOM_L}/book-now", params={"k": k}, json={"minutes": 45}
    )
    assert bad.status_code == 422
    again = await cloud.http.post(
        f"/api/v1/panel/{ROOM_L}/book-now", params={"k": k}, json={"minutes": 15}
    )
    assert again.status_code == 409

    # A booked meeting in the other room: checked in by the room's QR from a phone.
    now = datetime.now(UTC).replace(microsecond=0)
    when = (now.isoformat(), (now + timedelta(hours=1)).isoformat())
    r = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_S, "p-ayu", when))
    ayu = auth_headers(settings, "p-ayu", ("asn",))
    wrong = await cloud.http.post(
        f"/api/v1/rooms/{ROOM_S}/checkin", json={"key": "nope"}, headers=ayu
    )
    assert wrong.status_code == 403
    qr_key = _keys(cloud).key(CHECKIN_PREFIX + ROOM_S)
    ok = await cloud.http.post(f"/api/v1/rooms/{ROOM_S}/checkin", json={"key": qr_key}, headers=ayu)
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "checked_in" and ok.json()["id"] == r.json()["id"]
    schedule = (
        await cloud.http.get(
            f"/api/v1/panel/{ROOM_S}", params={"k": panel_key(_keys(cloud), ROOM_S)}
        )
    ).json()
    assert schedule["now"]["checked_in"] is True
    assert schedule["checkin_url"].endswith(f"/room-checkin/{ROOM_S}?k={qr_key}")


async def test_calendar_url_lists_desk_room_and_shuttle_bookings_until_revoked(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    await import_gtfs(cloud.app.state.engine, sample_zip())
    trip = await future_trip(cloud.app.state.engine)
    seat = await cloud.http.post("/api/v1/transport/reservations", json=reservation(trip, "p-ayu"))
    assert seat.status_code == 201, seat.text
    ayu = auth_headers(settings, "p-ayu", ("asn",))
    desk = await cloud.http.post("/api/v1/bookings", json=booking("L1-D01", "p-ayu", slot(days=1)))
    assert desk.status_code == 201, desk.text
    room = await cloud.http.post(
        "/api/v1/room-bookings", json=body(ROOM_L, "p-ayu", at(days=1, hour=14), title="Sprint")
    )
    other = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_S, "p-budi", at(days=1)))
    assert room.status_code == other.status_code == 201

    r = await cloud.http.post("/api/v1/me/calendar-token", headers=ayu)
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    path = url[url.index("/api/v1/calendar/") :]
    feed = await cloud.http.get(path, headers={"Authorization": ""})
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(feed.text)
    uids = {str(e["UID"]) for e in cal.walk("VEVENT")}
    assert uids == {
        f"booking-{desk.json()['id']}@ruang",
        f"room-booking-{room.json()['id']}@ruang",
        f"seat-{seat.json()['id']}@ruang",
    }
    shuttle = next(e for e in cal.walk("VEVENT") if str(e["UID"]).startswith("seat-"))
    assert str(shuttle["SUMMARY"]) == f"Shuttle {trip.trip_id}"
    assert str(shuttle["LOCATION"]) == trip.stops[0]
    assert shuttle.decoded("DTEND") > shuttle.decoded("DTSTART")
    assert "Sprint" in {str(e["SUMMARY"]) for e in cal.walk("VEVENT")}

    assert (await cloud.http.delete("/api/v1/me/calendar-token", headers=ayu)).status_code == 204
    assert (await cloud.http.get(path)).status_code == 404
    assert (await cloud.http.get("/api/v1/calendar/" + "A" * 43 + ".ics")).status_code == 404


async def test_book_now_ends_at_the_next_meeting_and_is_refused_just_before_it(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    k = panel_key(_keys(cloud), ROOM_S)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
    when = (soon.isoformat(), (soon + timedelta(hours=1)).isoformat())
    assert (
        await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_S, "p-ayu", when))
    ).status_code == 201
    r = await cloud.http.post(
        f"/api/v1/panel/{ROOM_S}/book-now", params={"k": k}, json={"minutes": 60}
    )
    assert r.status_code == 201, r.text
    assert datetime.fromisoformat(r.json()["ends_at"]) == soon

    near = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=3)
    close = (near.isoformat(), (near + timedelta(minutes=30)).isoformat())
    assert (
        await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_L, "p-ayu", close))
    ).status_code == 201
    k_l = panel_key(_keys(cloud), ROOM_L)
    refused = await cloud.http.post(
        f"/api/v1/panel/{ROOM_L}/book-now", params={"k": k_l}, json={"minutes": 15}
    )
    assert (
        refused.status_code == 409
        and refused.json()["title"] == "Room already booked for that time"
    )
