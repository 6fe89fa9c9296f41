"""Snapshot building and signing: what the edge gets, and that it verifies with the public key."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.buildings.layout import apply_layout, parse_layout
from cloud.fleet.snapshots import (
    MAX_DEBOUNCE_S,
    PASS_SHARE,
    SnapshotSigner,
    build_body,
    debounce_s,
    next_version,
)
from edge.snapshot import SnapshotError, SnapshotView, load_public_key, verify_signature
from ruang import contract
from tests.cloud.conftest import RunningCloud
from tests.e2e.test_desk_booking import DESK_A, DESK_B, DROP_IN, LAYOUT, NODE, ROSTER


def test_key_is_created_private_and_signatures_verify_at_the_edge(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "snapshot.pem"
    signer = SnapshotSigner.from_path(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SnapshotSigner.from_path(path).key_id == signer.key_id  # reloaded, not regenerated
    assert len(signer.key_id) == 16

    body = contract.SnapshotBody(version=1, issued_at=1.0, valid_until=2.0)
    snapshot = signer.sign("node-1", body)
    # Through the wire format, as the edge receives it.
    _, received = contract.decode(contract.topic_for(snapshot), contract.encode(snapshot))
    assert isinstance(received, contract.Snapshot)
    verify_signature(received, load_public_key(signer.public_pem))

    tampered = received.model_copy(update={"body": body.model_copy(update={"version": 2})})
    with pytest.raises(SnapshotError):
        verify_signature(tampered, load_public_key(signer.public_pem))


def test_versions_only_grow() -> None:
    assert next_version(None, 1000.0) == 1_000_000
    assert next_version(1_000_000, 1000.0) == 1_000_001
    assert next_version(5, 1000.0) == 1_000_000


async def test_body_holds_desks_bookings_badges_and_site_rules(cloud: RunningCloud) -> None:
    engine = cloud.app.state.engine
    layout = {**LAYOUT, "site": {**LAYOUT["site"], "checkin_grace_min": 10, "away_release_min": 20}}
    await apply_layout(engine, parse_layout(layout))
    r = await cloud.http.post(
        "/api/v1/people/import", content=ROSTER, headers={"content-type": "text/csv"}
    )
    assert r.status_code == 200
    for uid, person in (("04a1b2c3d4e5f6", "p-ayu"), ("ble:badge-7", "p-budi")):
        kind = "ble" if uid.startswith("ble:") else "nfc"
        r = await cloud.http.post(
            "/api/v1/badges", json={"kind": kind, "uid": uid, "person_id": person}
        )
        assert r.status_code == 201, r.text
    start = datetime.now(UTC) - timedelta(minutes=1)
    r = await cloud.http.post(
        "/api/v1/bookings",
        json={
            "desk_id": DESK_A,
            "person_id": "p-ayu",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    booking_id = r.json()["id"]
    cancelled = await cloud.http.post(
        "/api/v1/bookings",
        json={
            "desk_id": DESK_B,
            "person_id": "p-budi",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
        },
    )
    await cloud.http.post(f"/api/v1/bookings/{cancelled.json()['id']}/cancel")

    now = datetime.now(UTC)
    async with engine.connect() as conn:
        body = await build_body(conn, NODE, now, 7)
    assert body.version == 7
    assert (body.grace_s, body.away_s, body.away_warning_s) == (600, 1200, 300)
    assert [(d.desk, d.mode) for d in body.desks] == [
        (DESK_A, "reservable"),
        (DESK_B, "reservable"),
        (DROP_IN, "drop_in"),
    ]
    assert [(b.id, b.desk, b.person, b.status) for b in body.bookings] == [
        (str(booking_id), DESK_A, "p-ayu", "booked")
    ]  # the cancelled one is left out
    assert {(b.badge, b.person) for b in body.badges} == {
        ("04A1B2C3D4E5F6", "p-ayu"),
        ("ble:badge-7", "p-budi"),
    }
    assert body.valid_until > now.timestamp() + 6 * 3600
    view = SnapshotView.of(body)
    assert view.booking_at(DESK_A, now.timestamp()) is not None

    r = await cloud.http.get("/api/v1/snapshot-key")
    assert r.status_code == 200
    assert r.content.startswith(b"-----BEGIN PUBLIC KEY-----")


def test_the_debounce_stretches_after_long_passes_within_its_cap() -> None:
    # Short passes keep the configured debounce; a long pass (a rush rebuilding most
    # nodes) is followed by a wait that keeps passes at PASS_SHARE of the time, but no
    # change waits more than MAX_DEBOUNCE_S (or the configured debounce, if longer).
    assert debounce_s(0.5, 0.0) == 0.5
    assert debounce_s(0.5, 0.1) == 0.5
    assert debounce_s(0.5, 0.3) == pytest.approx(0.3 * (1 - PASS_SHARE) / PASS_SHARE)
    assert debounce_s(0.5, 30.0) == MAX_DEBOUNCE_S
    assert debounce_s(MAX_DEBOUNCE_S + 1, 30.0) == MAX_DEBOUNCE_S + 1
