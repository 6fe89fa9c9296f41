"""Room bookings through the API: search, book, overlap refused, extend, end early, series."""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar

from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers

from .room_helpers import ROOM_L, ROOM_S, at, body, notifications


async def test_availability_filters_by_time_capacity_floor_and_equipment(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    when = at(days=1)
    params = {"start": when[0], "end": when[1], "floor": "A1-L1"}
    r = await cloud.http.get("/api/v1/rooms/availability", params=params)
    assert r.status_code == 200, r.text
    assert {x["id"] for x in r.json()["rooms"]} == {ROOM_S, ROOM_L}

    big = await cloud.http.get("/api/v1/rooms/availability", params=params | {"capacity": 10})
    assert [x["id"] for x in big.json()["rooms"]] == [ROOM_L]
    vc = await cloud.http.get(
        "/api/v1/rooms/availability", params=params | {"features": "video_conference"}
    )
    assert [x["id"] for x in vc.json()["rooms"]] == [ROOM_L]

    r = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_L, "p-ayu", when))
    assert r.status_code == 201, r.text
    after = await cloud.http.get("/api/v1/rooms/availability", params=params)
    assert {x["id"] for x in after.json()["rooms"]} == {ROOM_S}
    # A range that only touches the booking's end is free again (half-open ranges).
    later = {"start": when[1], "end": at(days=1, hour=12)[0], "floor": "A1-L1"}
    again = await cloud.http.get("/api/v1/rooms/availability", params=later)
    assert {x["id"] for x in again.json()["rooms"]} == {ROOM_S, ROOM_L}


async def test_overlapping_booking_is_refused_and_extension_into_the_next_meeting_too(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    first = at(days=1, hour=9)
    second = at(days=1, hour=10)
    a = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_S, "p-ayu", first))
    b = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_S, "p-budi", second))
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    clash = await cloud.http.post(
        "/api/v1/room-bookings",
        json=body(ROOM_S, "p-budi", (first[0], second[0])),
    )
    assert clash.status_code == 409
    assert clash.headers["content-type"] == "application/problem+json"
    assert clash.json()["title"] == "Room already booked for that time"

    longer = (datetime.fromisoformat(second[0]) + timedelta(minutes=30)).isoformat()
    r = await cloud.http.post(
        f"/api/v1/room-bookings/{a.json()['id']}/extend", json={"ends_at": longer}
    )
    assert r.status_code == 409 and r.json()["title"] == "Room already booked for that time"
    # Cancelling the next meeting makes room for the extension.
    assert (
        await cloud.http.post(f"/api/v1/room-bookings/{b.json()['id']}/cancel")
    ).status_code == 200
    r = await cloud.http.post(
        f"/api/v1/room-bookings/{a.json()['id']}/extend", json={"ends_at": longer}
    )
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["ends_at"]) == datetime.fromisoformat(longer)


async def test_end_early_frees_the_rest_of_the_slot(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    now = datetime.now().astimezone()
    when = (now.isoformat(), (now + timedelta(hours=1)).isoformat())
    r = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_S, "p-ayu", when))
    assert r.status_code == 201, r.text
    ended = await cloud.http.post(f"/api/v1/room-bookings/{r.json()['id']}/end")
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "completed"
    assert datetime.fromisoformat(ended.json()["ends_at"]) < now + timedelta(minutes=5)
    later = ((now + timedelta(minutes=10)).isoformat(), when[1])
    again = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_S, "p-budi", later))
    assert again.status_code == 201, again.text
    # An ended meeting cannot end twice.
    twice = await cloud.http.post(f"/api/v1/room-bookings/{r.json()['id']}/end")
    assert twice.status_code == 409


async def test_weekly_series_books_each_occurrence_and_reports_conflicts_per_occurrence(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    first = datetime.fromisoformat(at(days=1)[0]).date()
    taken = at(days=8, hour=10)  # the series' second occurrence
    r = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_L, "p-budi", taken))
    assert r.status_code == 201
    series = {
        "room_id": ROOM_L,
        "person_id": "p-ayu",
        "frequency": "weekly",
        "first_day": first.isoformat(),
        "until": (first + timedelta(days=13)).isoformat(),
        "start_time": "09:30",
        "end_time": "10:30",
        "title": "Rapat mingguan",
    }
    r = await cloud.http.post("/api/v1/room-bookings/recurring", json=series)
    assert r.status_code == 201, r.text
    out = r.json()
    assert len(out["created"]) == 1 and len(out["conflicts"]) == 1
    assert out["conflicts"][0]["day"] == (first + timedelta(days=7)).isoformat()
    assert out["conflicts"][0]["title"] == "Room already booked for that time"
    assert {b["series_id"] for b in out["created"]} == {out["series_id"]}

    daily = series | {"frequency": "daily", "until": (first + timedelta(days=6)).isoformat(),
                      "start_time": "14:00", "end_time": "15:00"}  # fmt: skip
    r = await cloud.http.post("/api/v1/room-bookings/recurring", json=daily)
    days = [datetime.fromisoformat(b["starts_at"]).date() for b in r.json()["created"]]
    assert len(days) == 5 and not r.json()["conflicts"]  # weekends skipped


async def test_confirmation_carries_an_ics_invitation_that_icalendar_parses(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    when = at(days=2, hour=13)
    r = await cloud.http.post(
        "/api/v1/room-bookings", json=body(ROOM_L, "p-ayu", when, title="Rapat; anggaran, 2027")
    )
    assert r.status_code == 201
    [note] = await notifications(cloud, "p-ayu", "room_booked")
    assert note.data["room"] == "Ruang Rapat 1.2"
    [attachment] = note.attachments
    assert attachment["content_type"] == "text/calendar"
    cal = icalendar.Calendar.from_ical(attachment["text"])
    [event] = list(cal.walk("VEVENT"))
    assert str(event["SUMMARY"]) == "Rapat; anggaran, 2027"
    assert str(event["LOCATION"]) == "Ruang Rapat 1.2"
    assert event.decoded("DTSTART") == datetime.fromisoformat(when[0])
    assert event.decoded("DTEND") == datetime.fromisoformat(when[1])


async def test_only_the_organiser_or_a_manager_of_the_site_changes_a_booking(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    ayu = auth_headers(settings, "p-ayu", ("asn",))
    budi = auth_headers(settings, "p-budi", ("asn",))
    when = at(days=1, hour=15)
    r = await cloud.http.post(
        "/api/v1/room-bookings", json=body(ROOM_S, "p-budi", when), headers=ayu
    )
    assert r.status_code == 403
    r = await cloud.http.post(
        "/api/v1/room-bookings", json=body(ROOM_S, "p-ayu", when), headers=ayu
    )
    assert r.status_code == 201
    bid = r.json()["id"]
    assert (
        await cloud.http.post(f"/api/v1/room-bookings/{bid}/cancel", headers=budi)
    ).status_code == 403
    mine = await cloud.http.get("/api/v1/room-bookings", headers=budi)
    assert mine.status_code == 200 and mine.json() == []
    assert (
        await cloud.http.post(f"/api/v1/room-bookings/{bid}/cancel", headers=ayu)
    ).status_code == 200
