"""The admin console's API: import preview (dry run), enrolment tokens listed and withdrawn,
node config checked with line numbers, and the audit entry sharing its change's fate."""

from __future__ import annotations

from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import ROSTER
from tests.cloud.conftest import RunningCloud, start_cloud
from tests.helpers import auth_headers

CSV = {"content-type": "text/csv"}


async def _actions(cloud: RunningCloud, **query: str) -> list[str]:
    r = await cloud.http.get("/api/v1/audit", params=query)
    return [e["action"] for e in r.json()["items"]]


async def test_preview_finds_the_imports_errors_and_writes_nothing(cloud: RunningCloud) -> None:
    r = await cloud.http.post("/api/v1/people/import/preview", content=ROSTER, headers=CSV)
    assert r.status_code == 200 and r.json() == {
        "ok": True, "created": 4, "updated": 0, "badges_issued": 0, "errors": [],
    }  # fmt: skip
    assert (await cloud.http.get("/api/v1/people")).json() == []
    bad = "id,kind,name,role\np-1,asn,Satu,asn\np-2,alien,Dua,asn\n"
    r = await cloud.http.post("/api/v1/people/import/preview", content=bad, headers=CSV)
    assert r.json()["ok"] is False and [e["line"] for e in r.json()["errors"]] == [3]
    # A preview is not an action: only the import is audited.
    assert await _actions(cloud, action="people") == []
    r = await cloud.http.post("/api/v1/people/import", content=ROSTER, headers=CSV)
    assert r.status_code == 200
    assert await _actions(cloud, action="people") == ["people.import"]
    r = await cloud.http.get("/api/v1/people", params={"q": "AYU"})
    assert [p["id"] for p in r.json()] == ["p-ayu"]
    r = await cloud.http.get("/api/v1/people", params={"q": "%"})
    assert r.json() == []  # wildcards are literal


async def test_a_refused_change_leaves_no_audit_entry(cloud: RunningCloud) -> None:
    await cloud.http.post("/api/v1/people/import", content=ROSTER, headers=CSV)
    badge = {"kind": "nfc", "uid": "04A1B2C3", "person_id": "p-ayu"}
    assert (await cloud.http.post("/api/v1/badges", json=badge)).status_code == 201
    taken = {**badge, "person_id": "p-budi"}
    assert (await cloud.http.post("/api/v1/badges", json=taken)).status_code == 409
    assert await _actions(cloud, action="badge") == ["badge.issue"]
    r = await cloud.http.get("/api/v1/audit", params={"action": "badge"})
    assert r.json()["items"][0]["detail"]["uid"] == "…B2C3"


async def test_enrolment_tokens_are_listed_without_the_token_and_can_be_withdrawn(
    cloud: RunningCloud,
) -> None:
    r = await cloud.http.post("/api/v1/enrolment-tokens", json={"node_id": "ikn-x-01"})
    token = r.json()["token"]
    listed = (await cloud.http.get("/api/v1/enrolment-tokens")).json()
    (mine,) = [t for t in listed if t["node_id"] == "ikn-x-01"]
    assert mine["state"] == "open" and token not in str(listed)
    s = cloud.app.state.settings
    # A technician sees the tokens they made, not other people's for unplaced nodes.
    tech = auth_headers(s, "p-tech", ("technician",), ("site-x",))
    assert (await cloud.http.get("/api/v1/enrolment-tokens", headers=tech)).json() == []
    r = await cloud.http.delete(f"/api/v1/enrolment-tokens/{mine['ref']}", headers=tech)
    assert r.status_code == 404
    r = await cloud.http.delete(f"/api/v1/enrolment-tokens/{mine['ref']}")
    assert r.status_code == 204
    r = await cloud.http.delete(f"/api/v1/enrolment-tokens/{mine['ref']}")
    assert r.status_code == 409
    r = await cloud.http.post("/api/v1/enroll", json={"token": token})
    assert r.status_code == 410 and r.json()["title"] == "Enrolment token withdrawn"
    assert await _actions(cloud, action="enrolment_token") == [
        "enrolment_token.withdraw",
        "enrolment_token.create",
    ]


async def test_config_check_reports_problems_with_their_lines(cloud: RunningCloud) -> None:
    url = "/api/v1/nodes/ikn-x-02/config/check"
    text = '{\n  "away_s": 600,\n  "mqtt_password": "x"\n}'
    r = await cloud.http.post(url, json={"text": text, "format": "json"})
    body = r.json()
    assert body["ok"] is False and body["errors"][0]["line"] == 3
    assert "cannot be set remotely" in body["errors"][0]["message"]
    r = await cloud.http.post(url, json={"text": '{"away_s": 600,', "format": "json"})
    assert r.json()["errors"][0]["line"] == 1
    yaml_text = "away_s: 600\nbuilding_tz: Mars/Olympus\ndesk_units: 3\n"
    r = await cloud.http.post(url, json={"text": yaml_text, "format": "yaml"})
    lines = {e["line"] for e in r.json()["errors"]}
    assert lines == {2, 3}
    r = await cloud.http.post(url, json={"text": "- a\n- b\n", "format": "yaml"})
    assert r.json()["ok"] is False
    r = await cloud.http.post(url, json={"text": "away_s: 600\n", "format": "yaml"})
    assert r.json() == {"ok": True, "config": {"away_s": 600}, "errors": []}
    # Checking stores nothing.
    assert (await cloud.http.get("/api/v1/nodes/ikn-x-02/config")).json()["desired"] is None


async def test_webhook_audit_keeps_no_secret_or_query(settings: CloudSettings) -> None:
    allowed = settings.model_copy(update={"webhook_allowed_hosts": ["127.0.0.1"]})
    async with start_cloud(allowed) as cloud:
        body = {"url": "http://127.0.0.1:9/in?token=abc123", "secret": "s" * 20}
        r = await cloud.http.post("/api/v1/webhooks", json=body)
        assert r.status_code == 201, r.text
        r = await cloud.http.delete(f"/api/v1/webhooks/{r.json()['id']}")
        assert r.status_code == 204
        r = await cloud.http.get("/api/v1/audit", params={"action": "webhook"})
        deactivated, created = r.json()["items"]
        assert deactivated["action"] == "webhook.deactivate"
        assert created["detail"]["url"] == "http://127.0.0.1:9/in"
        assert "abc123" not in r.text and "s" * 20 not in r.text
