"""Contract tests of the integration events, one per family, on SQLite and PostgreSQL.

A real HTTP receiver on loopback subscribes to the family's kinds; the real action
happens through the API or MQTT ingestion; every delivery must be signed and its
body must validate against the committed JSON Schema of its kind
(docs/webhooks/<kind>.schema.json, with format checking). Fields a kind must not
carry (names, badge uids, meeting titles) are checked absent from the raw body.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiomqtt
from jsonschema import Draft202012Validator
from sqlalchemy import update

from cloud.buildings.layout import SAMPLE_LAYOUT, apply_layout, load_layout
from cloud.db.tables import TRANSPORT_VEHICLES
from cloud.integrations.payloads import CAR_KINDS
from cloud.rooms.noshow import room_noshow_pass
from cloud.rooms.panel import CHECKIN_PREFIX
from cloud.settings import CloudSettings
from cloud.transport.noshow import release_seat_no_shows
from edge.devices.audit_log import AuditLog
from edge.devices.door import audit_message_id
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud, eventually, publish, start_cloud, unique
from tests.cloud.integrations.conftest import Receiver, fast, subscribe
from tests.cloud.rooms.room_helpers import ROOM_L, ROOM_S, at, body
from tests.cloud.transport.seat_helpers import (
    add_vehicle,
    future_trip,
    import_people,
    load_schedule,
    reservation,
)
from tests.helpers import auth_headers

SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "webhooks"
BADGE = "04A1B2C3D4E5F6"


def validator(kind: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


async def received(
    cloud: RunningCloud, receiver: Receiver, kinds: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Waits for a delivery of every kind; checks each one; the bodies by kind."""

    async def all_kinds() -> bool:
        return set(kinds) <= {r["event"] for r in receiver.delivered()}

    await eventually(all_kinds, within=30.0)

    async def all_logged() -> bool:
        # The cloud stops only once every delivery is recorded, not in the middle of one.
        hooks = (await cloud.http.get("/api/v1/webhooks")).json()
        for hook in hooks:
            r = await cloud.http.get(f"/api/v1/webhooks/{hook['id']}/deliveries")
            if any(row["delivered_at"] is None for row in r.json()):
                return False
        return True

    await eventually(all_logged, within=30.0)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for req in receiver.delivered():
        assert req["event"] in kinds, f"not subscribed to {req['event']}"
        assert req["signature_ok"] and req["content_type"] == "application/json"
        assert req["body"]["kind"] == req["event"]
        errors = [e.message for e in validator(req["event"]).iter_errors(req["body"])]
        assert errors == [], (req["event"], errors)
        by_kind.setdefault(req["event"], []).append(req["body"]["data"])
    return by_kind


def raw(receiver: Receiver) -> str:
    return json.dumps([r["body"] for r in receiver.delivered()])


async def test_desk_bookings_through_the_api_and_taps_over_mqtt(
    settings: CloudSettings, receiver: Receiver, publisher: aiomqtt.Client
) -> None:
    changes = ("created", "extended", "cancelled", "checked_in", "checked_out", "released")
    kinds = [f"booking.{k}" for k in changes]
    async with start_cloud(fast(settings)) as cloud:
        await seed(cloud, settings)
        node, desk = unique("node"), unique("desk")
        await bind(cloud.app.state.engine, node, [desk])
        await subscribe(cloud, receiver.url, kinds=kinds)
        r = await cloud.http.post("/api/v1/bookings", json=booking(desk, "p-ayu", slot(2)))
        assert r.status_code == 201, r.text
        booked = r.json()
        later = datetime.fromisoformat(booked["ends_at"]) + timedelta(hours=1)
        r = await cloud.http.post(
            f"/api/v1/bookings/{booked['id']}/extend", json={"ends_at": later.isoformat()}
        )
        assert r.status_code == 200, r.text
        r = await cloud.http.post(f"/api/v1/bookings/{booked['id']}/cancel")
        assert r.status_code == 200, r.text
        # A walk-up claim ended by a tap, then one ended by leaving the desk.
        now = time.time()
        endings: tuple[Literal["tap", "left"], ...] = ("tap", "left")
        for i, reason in enumerate(endings):
            t = now - 60 + 20 * i
            await publish(
                publisher,
                contract.CheckIn(node=node, desk=desk, badge=BADGE, person="p-ayu", ts=t),
            )
            await publish(
                publisher, contract.CheckOut(node=node, desk=desk, reason=reason, ts=t + 5)
            )
        got = await received(cloud, receiver, kinds)
    assert got["booking.created"][0]["booking_id"] == booked["id"]
    assert got["booking.cancelled"][0]["status"] == "cancelled"
    assert {d["node"] for d in got["booking.checked_in"]} == {node}
    assert got["booking.released"][0]["release_reason"] == "away"
    assert BADGE not in raw(receiver) and "Ayu" not in raw(receiver)


async def test_room_bookings_through_the_api_the_qr_and_the_no_show_pass(
    settings: CloudSettings, receiver: Receiver, publisher: aiomqtt.Client
) -> None:
    changes = ("created", "extended", "cancelled", "checked_in", "ended", "released")
    kinds = [f"room_booking.{k}" for k in changes]
    async with start_cloud(fast(settings)) as cloud:
        await seed(cloud, settings)
        await subscribe(cloud, receiver.url, kinds=kinds)
        secret_title = "Rapat rahasia anggaran"
        r = await cloud.http.post(
            "/api/v1/room-bookings", json=body(ROOM_S, "p-ayu", at(2), title=secret_title)
        )
        assert r.status_code == 201, r.text
        later = datetime.fromisoformat(r.json()["ends_at"]) + timedelta(minutes=30)
        first = r.json()["id"]
        # Refused by the overlap guard: its transaction rolls back, and no event with it.
        clash = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_S, "p-budi", at(2)))
        assert clash.status_code == 409, clash.text
        r = await cloud.http.post(
            f"/api/v1/room-bookings/{first}/extend", json={"ends_at": later.isoformat()}
        )
        assert r.status_code == 200, r.text
        assert (await cloud.http.post(f"/api/v1/room-bookings/{first}/cancel")).status_code == 200
        # A meeting starting now: checked in by the room's QR, then ended early.
        start = datetime.now(UTC).replace(microsecond=0)
        now_slot = (start.isoformat(), (start + timedelta(hours=1)).isoformat())
        r = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_L, "p-budi", now_slot))
        assert r.status_code == 201, r.text
        meeting = r.json()["id"]
        key = cloud.app.state.checkin_keys.key(CHECKIN_PREFIX + ROOM_L)
        budi = auth_headers(settings, "p-budi", ("asn",))
        r = await cloud.http.post(
            f"/api/v1/rooms/{ROOM_L}/checkin", json={"key": key}, headers=budi
        )
        assert r.status_code == 200, r.text
        assert (await cloud.http.post(f"/api/v1/room-bookings/{meeting}/end")).status_code == 200
        # An empty room (radar) whose meeting nobody attends is released by the no-show pass.
        await publish(
            publisher,
            contract.RoomPresence(
                node="ikn-demo-l1", room=ROOM_S, present=False, sensor=f"{ROOM_S}-occupancy"
            ),
        )

        async def read() -> bool:
            rooms = (await cloud.http.get("/api/v1/rooms", params={"floor": "A1-L1"})).json()
            return any(x["id"] == ROOM_S and x["occupied"] is False for x in rooms)

        await eventually(read)
        r = await cloud.http.post("/api/v1/room-bookings", json=body(ROOM_S, "p-ayu", now_slot))
        assert r.status_code == 201, r.text
        engine = cloud.app.state.engine
        assert await room_noshow_pass(engine, start + timedelta(hours=0.5)) == (0, 1)
        got = await received(cloud, receiver, kinds)
    made = [d["booking_id"] for d in got["room_booking.created"]]
    assert len(made) == 3 and first in made and meeting in made  # not the refused one
    assert got["room_booking.released"][0]["status"] == "no_show"
    assert got["room_booking.ended"][0]["booking_id"] == meeting
    assert secret_title not in raw(receiver)


async def test_door_decisions_and_node_online_offline_over_mqtt(
    settings: CloudSettings, receiver: Receiver, publisher: aiomqtt.Client, tmp_path: Path
) -> None:
    kinds = ["access.decision", "node.online", "node.offline"]
    async with start_cloud(fast(settings, node_offline_after_s=1.0)) as cloud:
        await subscribe(cloud, receiver.url, kinds=kinds)
        node, door = unique("door-node"), unique("door")
        await publish(publisher, contract.NodeState(node=node, online=True, bdseq=1))
        log = AuditLog(tmp_path / "audit")
        try:
            entry = log.append(door=door, badge=BADGE, granted=True, reason="allowed")
        finally:
            log.close()
        decision = contract.AccessDecision(
            node=node, id=audit_message_id(entry.hash), ts=entry.ts, door=entry.door,
            badge=entry.badge, granted=entry.granted, reason=entry.reason,
            audit_seq=entry.seq, audit_hash=entry.hash,
        )  # fmt: skip
        await publish(publisher, decision)
        await publish(publisher, contract.NodeState(node=node, online=False, bdseq=1))
        # A second node goes silent: the sweep marks it offline.
        quiet = unique("quiet-node")
        await publish(publisher, contract.NodeState(node=quiet, online=True, bdseq=7))

        async def both_offline() -> bool:
            causes = {
                (r["body"]["data"]["node"], r["body"]["data"]["cause"])
                for r in receiver.delivered()
                if r["event"] == "node.offline"
            }
            return {(node, "will"), (quiet, "silent")} <= causes

        await eventually(both_offline, within=30.0)
        got = await received(cloud, receiver, kinds)
    [door_event] = [d for d in got["access.decision"] if d["node"] == node]
    assert (door_event["door"], door_event["granted"]) == (door, True)
    assert door_event["message_id"] == decision.id
    assert {d["node"] for d in got["node.online"]} >= {node, quiet}
    assert BADGE not in raw(receiver)


async def test_visitor_arrival_and_departure_through_reception(
    settings: CloudSettings, receiver: Receiver
) -> None:
    kinds = ["visitor.checked_in", "visitor.checked_out"]
    site = "ikn-kipp"
    async with start_cloud(fast(settings)) as cloud:
        await apply_layout(cloud.app.state.engine, load_layout(SAMPLE_LAYOUT))
        roster = "id,kind,name,agency,role,email,site_id\np-ayu,asn,Ayu Lestari,Otorita IKN,asn,ayu@example.go.id,ikn-kipp\n"  # noqa: E501
        r = await cloud.http.post(
            "/api/v1/people/import", content=roster, headers={"content-type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        await subscribe(cloud, receiver.url, kinds=kinds)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        invite = {
            "guest_name": "Rina Kusuma", "guest_email": "rina@mitra.example",
            "organisation": "PT Mitra Nusantara", "purpose": "Rapat koordinasi",
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
        }  # fmt: skip
        ayu = auth_headers(settings, "p-ayu", ("asn",))
        r = await cloud.http.post("/api/v1/visits", json=invite, headers=ayu)
        assert r.status_code == 201, r.text
        visit = r.json()["id"]
        desk = auth_headers(settings, "p-resepsionis", ("reception",), (site,))
        r = await cloud.http.post(
            "/api/v1/reception/checkin",
            json={"visit_id": visit, "card_uid": "04c0ffee0001"},
            headers=desk,
        )
        assert r.status_code == 200, r.text
        r = await cloud.http.post(f"/api/v1/reception/visits/{visit}/checkout", headers=desk)
        assert r.status_code == 200, r.text
        got = await received(cloud, receiver, kinds)
    assert [d["visit_id"] for d in got["visitor.checked_in"]] == [visit]
    assert got["visitor.checked_out"][0]["status"] == "checked_out"
    text = raw(receiver)
    for personal in ("Rina", "rina@", "Mitra", "p-ayu", "04C0FFEE0001"):
        assert personal not in text


async def test_seats_boardings_and_trip_cancellations(
    settings: CloudSettings, receiver: Receiver, publisher: aiomqtt.Client
) -> None:
    kinds = [
        "transport.seat_reserved",
        "transport.seat_cancelled",
        "transport.boarding",
        "transport.trip_cancelled",
    ]
    async with start_cloud(fast(settings)) as cloud:
        engine = cloud.app.state.engine
        await load_schedule(engine)
        await import_people(cloud.http, ["p-rider"])
        trip = await future_trip(engine)
        await subscribe(cloud, receiver.url, kinds=kinds)
        r = await cloud.http.post(
            "/api/v1/transport/reservations", json=reservation(trip, "p-rider")
        )
        assert r.status_code == 201, r.text
        seat = r.json()["id"]
        r = await cloud.http.delete(f"/api/v1/transport/reservations/{seat}")
        assert r.status_code == 200, r.text
        r = await cloud.http.post(
            "/api/v1/transport/reservations", json=reservation(trip, "p-rider")
        )
        assert r.status_code == 201, r.text
        cancel = {"trip_id": trip.trip_id, "service_date": trip.service_date, "reason": "banjir"}
        r = await cloud.http.post("/api/v1/transport/cancellations", json=cancel)
        assert r.status_code == 201, r.text
        vehicle, node = unique("shuttle"), unique("node-shuttle")
        await add_vehicle(engine, vehicle, "shuttle", 20)
        async with engine.begin() as conn:  # the shuttle's node, as enrolment binds it
            await conn.execute(
                update(TRANSPORT_VEHICLES)
                .where(TRANSPORT_VEHICLES.c.id == vehicle)
                .values(node_id=node)
            )
        await publish(
            publisher,
            contract.Boarding(
                node=node, vehicle=vehicle, reader="door-1", badge=BADGE, allowed=True,
                reason="walk_on", trip=trip.trip_id, service_date=trip.service_date,
                stop=trip.stops[0],
            ),
        )  # fmt: skip
        got = await received(cloud, receiver, kinds)
    assert [d["status"] for d in got["transport.seat_reserved"]] == ["confirmed", "confirmed"]
    assert got["transport.seat_cancelled"][0]["reservation_id"] == seat
    [cancelled] = got["transport.trip_cancelled"]
    assert (cancelled["trip_id"], cancelled["reservations_ended"]) == (trip.trip_id, 1)
    [boarding] = got["transport.boarding"]
    assert (boarding["vehicle_id"], boarding["allowed"]) == (vehicle, True)
    assert BADGE not in raw(receiver) and "p-rider" not in raw(receiver)


async def test_seat_promotions_and_no_shows(settings: CloudSettings, receiver: Receiver) -> None:
    kinds = ["transport.seat_promoted", "transport.seat_no_show"]
    settings = fast(settings).model_copy(update={"shuttle_default_capacity": 1})
    async with start_cloud(settings) as cloud:
        engine, http = cloud.app.state.engine, cloud.http
        await load_schedule(engine)
        await import_people(http, ["p-seat", "p-queue"])
        trip = await future_trip(engine)
        await subscribe(cloud, receiver.url, kinds=kinds)
        r = await http.post("/api/v1/transport/reservations", json=reservation(trip, "p-seat"))
        assert r.status_code == 201 and r.json()["status"] == "confirmed", r.text
        seated = r.json()["id"]
        queued = reservation(trip, "p-queue", waitlist=True)
        r = await http.post("/api/v1/transport/reservations", json=queued)
        assert r.status_code == 201 and r.json()["status"] == "waitlisted", r.text
        waiting = r.json()["id"]
        # The seated rider cancels: p-queue is promoted. Then nobody boards, and after
        # departure and the grace p-queue's seat is released as a no-show.
        r = await http.delete(f"/api/v1/transport/reservations/{seated}")
        assert r.status_code == 200, r.text
        departs = datetime.fromtimestamp(trip.departures[0], UTC)
        await release_seat_no_shows(
            cloud.app.state.booking_store, departs + timedelta(minutes=5), grace=timedelta(0)
        )
        got = await received(cloud, receiver, kinds)
    [promoted] = got["transport.seat_promoted"]
    assert (promoted["reservation_id"], promoted["status"]) == (waiting, "confirmed")
    [no_show] = got["transport.seat_no_show"]
    assert (no_show["reservation_id"], no_show["status"]) == (waiting, "no_show")
    assert "p-queue" not in raw(receiver) and "p-seat" not in raw(receiver)


async def test_pool_car_from_request_to_return(
    settings: CloudSettings, receiver: Receiver, publisher: aiomqtt.Client
) -> None:
    from tests.cloud.transport.test_poolcars import BOOK, _car

    kinds = [f"transport.car_{k}" for k in CAR_KINDS]
    async with start_cloud(fast(settings)) as cloud:
        engine, http = cloud.app.state.engine, cloud.http
        await load_schedule(engine)
        car, node = unique("car"), unique("node-car")
        await add_vehicle(engine, car, "poolcar", 5)
        async with engine.begin() as conn:  # the car's node, as enrolment binds it
            await conn.execute(
                update(TRANSPORT_VEHICLES).where(TRANSPORT_VEHICLES.c.id == car)
                .values(node_id=node)
            )  # fmt: skip
        await import_people(http, ["asn-car", "appr-car"], agency="Otorita IKN")
        await subscribe(cloud, receiver.url, kinds=kinds)
        asn = auth_headers(settings, "asn-car", ("asn",))
        approver = auth_headers(settings, "appr-car", ("approver",))
        start = datetime.now(UTC) + timedelta(minutes=5)
        ids = []
        for hours in (0, 3, 6):  # three bookings: one goes all the way, two end early
            r = await http.post(
                BOOK, json=_car(None, start + timedelta(hours=hours), car=car), headers=asn
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        ridden, rejected, cancelled = ids
        secret = "Rapat rahasia di KIPP"
        r = await http.post(f"{BOOK}/{ridden}/approve", headers=approver, json={"note": secret})
        assert r.status_code == 200, r.text
        r = await http.post(f"{BOOK}/{rejected}/reject", headers=approver, json={"note": "x"})
        assert r.status_code == 200, r.text
        r = await http.post(f"{BOOK}/{cancelled}/cancel", headers=asn)
        assert r.status_code == 200, r.text
        for action in ("pickup", "return"):
            await publish(
                publisher,
                contract.PoolCarUse(
                    node=node, vehicle=car, reader="car-reader", badge=BADGE, action=action,
                    reason="booked", booking=str(ridden), lat=-0.97, lon=116.7,
                ),
            )  # fmt: skip
        got = await received(cloud, receiver, kinds)
    assert sorted(d["booking_id"] for d in got["transport.car_requested"]) == sorted(ids)
    assert [d["booking_id"] for d in got["transport.car_approved"]] == [ridden]
    assert [d["booking_id"] for d in got["transport.car_rejected"]] == [rejected]
    assert [d["booking_id"] for d in got["transport.car_cancelled"]] == [cancelled]
    [picked] = got["transport.car_picked_up"]
    [returned] = got["transport.car_returned"]
    assert (picked["status"], returned["status"]) == ("picked_up", "returned")
    assert returned["agency"] == "Otorita IKN" and returned["returned_at"] is not None
    body_text = raw(receiver)
    for private in (BADGE, "asn-car", "appr-car", secret, "Kantor Otorita IKN"):
        assert private not in body_text, private
