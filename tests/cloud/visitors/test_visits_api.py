"""Visits through the API: invitation -> guest email with QR pass and ICS (real SMTP),
reception check-in by scanned pass, typed code or search -> host notified in-app and by email,
check-out; who may see guests by name."""

from __future__ import annotations

import re
from email.message import EmailMessage

import icalendar

from cloud.settings import CloudSettings
from cloud.visitors.passes import PassKeys, qr_svg
from launch.smtp_sink import SmtpSink
from tests.cloud.conftest import RunningCloud, eventually
from tests.helpers import auth_headers

from .conftest import SITE, invitation, window


def _part(message: EmailMessage, content_type: str) -> str:
    for part in message.iter_attachments():
        if part.get_content_type() == content_type:
            content = part.get_content()
            return content.decode() if isinstance(content, bytes) else str(content)
    raise AssertionError(f"no {content_type} attachment")


async def _mail_to(smtp: SmtpSink, address: str, count: int = 1) -> list[EmailMessage]:
    async def arrived() -> bool:
        return len([m for m in smtp.messages if address in m.rcpt_tos]) >= count

    await eventually(arrived)
    return [m.message for m in smtp.messages if address in m.rcpt_tos]


def _reception(settings: CloudSettings, site: str = SITE) -> dict[str, str]:
    return auth_headers(settings, "p-resepsionis", ("reception",), (site,))


async def test_invitation_mails_the_guest_a_signed_qr_pass_and_a_valid_ics_then_reception_checks_in_and_the_host_hears(  # noqa: E501
    office: RunningCloud, mail_settings: CloudSettings, smtp: SmtpSink
) -> None:
    ayu = auth_headers(mail_settings, "p-ayu", ("asn",))
    r = await office.http.post("/api/v1/visits", json=invitation(), headers=ayu)
    assert r.status_code == 201, r.text
    visit = r.json()
    assert (visit["host_person_id"], visit["site_id"], visit["status"]) == (
        "p-ayu",
        SITE,
        "invited",
    )
    # Default: the host's floor and the doors on no floor (the lobby); not floor 2.
    assert visit["doors"] == ["D-L1", "D-LOBBY"]

    [mail] = await _mail_to(smtp, "rina@mitra.example")
    assert "Ayu Lestari" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    calendar = icalendar.Calendar.from_ical(_part(mail, "text/calendar"))
    [event] = calendar.walk("VEVENT")
    assert event["UID"] == f"visit-{visit['id']}@ruang"
    assert event.decoded("DTSTART").isoformat() == visit["starts_at"].replace("Z", "+00:00")
    code = re.search(r"Kode pass: ([A-Z2-7]{10})", str(event["DESCRIPTION"]))
    assert code is not None
    keys: PassKeys = office.app.state.visitor_pass_keys
    token = keys.token(visit["id"], code[1])
    # The attached QR is exactly the signed token, drawn locally.
    assert _part(mail, "image/svg+xml") == qr_svg(token)
    r = await office.http.get(f"/api/v1/visits/{visit['id']}/pass.svg", headers=ayu)
    assert r.status_code == 200 and r.text == qr_svg(token)

    desk = _reception(mail_settings)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    r = await office.http.post("/api/v1/reception/checkin", json={"code": forged}, headers=desk)
    assert r.status_code == 404
    r = await office.http.post(
        "/api/v1/reception/checkin", json={"code": token, "card_uid": "04c0ffee0001"}, headers=desk
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "checked_in" and r.json()["card_uid"] == "04C0FFEE0001"
    r = await office.http.post("/api/v1/reception/checkin", json={"code": token}, headers=desk)
    assert r.status_code == 409

    # The host: in-app and by email, once.
    r = await office.http.get("/api/v1/me/notifications", headers=ayu)
    [arrived] = [n for n in r.json()["items"] if n["kind"] == "visitor_arrived"]
    assert "Rina Kusuma" in arrived["body"]
    [host_mail] = await _mail_to(smtp, "ayu@example.go.id")
    assert host_mail["Subject"] == "Tamu Anda sudah tiba"

    r = await office.http.post(f"/api/v1/reception/visits/{visit['id']}/checkout", headers=desk)
    assert r.status_code == 200 and r.json()["status"] == "checked_out"
    r = await office.http.post(f"/api/v1/reception/visits/{visit['id']}/checkout", headers=desk)
    assert r.status_code == 409


async def test_reception_checks_in_by_typed_code_or_by_search_and_a_card_in_use_is_refused(
    office: RunningCloud, mail_settings: CloudSettings, smtp: SmtpSink
) -> None:
    ayu = auth_headers(mail_settings, "p-ayu", ("asn",))
    first = (await office.http.post("/api/v1/visits", json=invitation(), headers=ayu)).json()
    second = (
        await office.http.post(
            "/api/v1/visits",
            json=invitation(
                guest_name="Dewi Anggraini",
                guest_email=None,
                guest_phone="+62 811 5550 123",
                organisation="Universitas Mulawarman",
                doors=["D-L2"],
            ),
            headers=ayu,
        )
    ).json()
    assert second["doors"] == ["D-L2"]
    desk = _reception(mail_settings)
    r = await office.http.get("/api/v1/reception/visits", params={"q": "mulawarman"}, headers=desk)
    assert [v["id"] for v in r.json()] == [second["id"]]
    r = await office.http.get("/api/v1/reception/visits", headers=desk)
    assert {v["guest_name"] for v in r.json()} == {"Rina Kusuma", "Dewi Anggraini"}

    [mail] = await _mail_to(smtp, "rina@mitra.example")
    ics = _part(mail, "text/calendar")
    code = re.search(r"Kode pass: ([A-Z2-7]{10})", ics.replace("\r\n ", ""))
    assert code is not None
    typed = f"{code[1][:5].lower()} {code[1][5:]}"  # read out in two groups, lower case
    r = await office.http.post(
        "/api/v1/reception/checkin", json={"code": typed, "card_uid": "04AA000000CC"}, headers=desk
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == first["id"]

    # The same card cannot open doors for two guests; nor a staff member's active badge.
    r = await office.http.post(
        "/api/v1/reception/checkin",
        json={"visit_id": second["id"], "card_uid": "04aa000000cc"},
        headers=desk,
    )
    assert r.status_code == 409
    r = await office.http.post(
        "/api/v1/badges", json={"kind": "nfc", "uid": "04BB000000DD", "person_id": "p-budi"}
    )
    assert r.status_code == 201, r.text
    r = await office.http.post(
        "/api/v1/reception/checkin",
        json={"visit_id": second["id"], "card_uid": "04BB000000DD"},
        headers=desk,
    )
    assert r.status_code == 409
    r = await office.http.post(
        "/api/v1/reception/checkin", json={"visit_id": second["id"]}, headers=desk
    )
    assert r.status_code == 200 and r.json()["card_uid"] is None


async def test_guests_are_named_only_to_their_host_the_sites_reception_and_admins(
    office: RunningCloud, mail_settings: CloudSettings
) -> None:
    ayu = auth_headers(mail_settings, "p-ayu", ("asn",))
    r = await office.http.post("/api/v1/visits", json=invitation(), headers=ayu)
    visit = r.json()
    one = f"/api/v1/visits/{visit['id']}"
    others = {
        "another asn": auth_headers(mail_settings, "p-budi", ("asn",)),
        "facility manager": auth_headers(mail_settings, "p-fm", ("facility_manager",), (SITE,)),
        "technician": auth_headers(mail_settings, "p-tech", ("technician",), (SITE,)),
        "security": auth_headers(mail_settings, "p-sec", ("security",), (SITE,)),
        "guest": auth_headers(mail_settings, "p-tamu", ("guest",)),
        "reception elsewhere": _reception(mail_settings, "other-site"),
    }
    for who, headers in others.items():
        r = await office.http.get(one, headers=headers)
        assert r.status_code == 404, who
        r = await office.http.get("/api/v1/visits", headers=headers)
        assert "Rina" not in r.text, who
        r = await office.http.get("/api/v1/reception/visits", headers=headers)
        assert r.status_code in (403, 200) and "Rina" not in r.text, who
        r = await office.http.post(f"{one}/cancel", headers=headers)
        assert r.status_code == 404, who
        r = await office.http.post(
            f"/api/v1/reception/visits/{visit['id']}/checkout", headers=headers
        )
        assert r.status_code in (403, 404), who
    for who, headers in {"host": ayu, "reception": _reception(mail_settings), "admin": {}}.items():
        r = await office.http.get(one, headers=headers)
        assert r.status_code == 200 and r.json()["guest_name"] == "Rina Kusuma", who
    # The floor maps and the lobby kiosk never carry guests: no visit data at all.
    for path in ("/api/v1/floors/A1-L1/map", "/api/v1/public/availability"):
        fm = auth_headers(mail_settings, "p-fm", ("facility_manager",), (SITE,))
        r = await office.http.get(path, headers=fm)
        assert "Rina" not in r.text and "Mitra" not in r.text
    # A guest cannot invite.
    r = await office.http.post("/api/v1/visits", json=invitation(), headers=others["guest"])
    assert r.status_code == 403


async def test_host_edits_and_cancels_the_guest_hears_each_time_and_a_cancelled_pass_is_refused(
    office: RunningCloud, mail_settings: CloudSettings, smtp: SmtpSink
) -> None:
    ayu = auth_headers(mail_settings, "p-ayu", ("asn",))
    visit = (await office.http.post("/api/v1/visits", json=invitation(), headers=ayu)).json()
    starts, ends = window(30, 60)
    body = {k: v for k, v in invitation().items() if k != "floor_id"}
    r = await office.http.put(
        f"/api/v1/visits/{visit['id']}", json=body | {"starts_at": starts, "ends_at": ends},
        headers=ayu,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["starts_at"].replace("Z", "+00:00") == starts
    r = await office.http.post(f"/api/v1/visits/{visit['id']}/cancel", headers=ayu)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    mails = await _mail_to(smtp, "rina@mitra.example", 3)
    # Mails may arrive in any order; the guest's calendar keeps the highest SEQUENCE, and
    # that one is the cancellation.
    calendars = [icalendar.Calendar.from_ical(_part(m, "text/calendar")) for m in mails]
    events = [(int(c.walk("VEVENT")[0]["SEQUENCE"]), str(c["METHOD"])) for c in calendars]
    assert sorted(method for _, method in events) == ["CANCEL", "PUBLISH", "PUBLISH"]
    assert max(events)[1] == "CANCEL"
    r = await office.http.post(
        "/api/v1/reception/checkin",
        json={"visit_id": visit["id"]},
        headers=_reception(mail_settings),
    )
    assert r.status_code == 409
    # Validation: no contact, reversed window, unknown door.
    bad = [
        invitation(guest_email=None),
        invitation(starts_at=ends, ends_at=starts),
        invitation(doors=["D-NOPE"]),
    ]
    for payload in bad:
        r = await office.http.post("/api/v1/visits", json=payload, headers=ayu)
        assert r.status_code == 422, r.text
