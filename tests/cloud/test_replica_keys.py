"""Two running cloud replicas given the same key files: a QR code, a visitor pass, a snapshot
and a session from one are good on the other (docs/operations.md, "Secrets and key rotation")."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.bookings.qrcheckin import CheckinKeys
from cloud.fleet.snapshots import SnapshotPublisher
from cloud.keys import generate_key_set
from cloud.settings import CloudSettings
from cloud.visitors.passes import PassKeys
from edge.snapshot import SnapshotStore, load_trusted_keys
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import start_cloud, unique
from tests.cloud.map_helpers import as_role
from tests.edge.snapshots import body

pytestmark = pytest.mark.servers


async def test_two_production_replicas_with_one_key_set_accept_each_others_codes(
    settings: CloudSettings, tmp_path: Path
) -> None:
    key_set = generate_key_set(tmp_path / "keys")
    files = key_set.files

    def replica(name: str) -> CloudSettings:
        return settings.model_copy(
            update={
                "environment": "production",
                "mqtt_client_id": unique(f"ruang-cloud-{name}"),
                "telemetry_sqlite_path": tmp_path / name / "telemetry.sqlite3",
                "snapshot_key_path": files["snapshot_key"],
                "auth_dev_key_path": files["auth_key"],
                "checkin_qr_secret_file": files["checkin_qr_secret"],
                "visitor_pass_secret_file": files["visitor_pass_secret"],
                "pseudonym_secret_file": files["pseudonym_secret"],
            }
        )

    a_settings, b_settings = replica("a"), replica("b")
    async with start_cloud(a_settings) as a, start_cloud(b_settings) as b:
        await seed(a, a_settings)
        # The printed QR code is the same whichever replica renders it ...
        qr_a = await a.http.get("/api/v1/desks/L1-D22/qr.svg")
        qr_b = await b.http.get("/api/v1/desks/L1-D22/qr.svg")
        assert qr_a.status_code == qr_b.status_code == 200
        assert qr_a.content == qr_b.content
        # ... and its key, printed by A, checks a person in on B, signed in by A's session.
        keys_a: CheckinKeys = a.app.state.checkin_keys
        ayu = as_role(a_settings, "asn", subject="p-ayu")
        r = await b.http.post(
            "/api/v1/desks/L1-D22/checkin", json={"key": keys_a.key("L1-D22")}, headers=ayu
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "checked_in"

        # A visitor pass signed by A reads on B.
        passes_a: PassKeys = a.app.state.visitor_pass_keys
        passes_b: PassKeys = b.app.state.visitor_pass_keys
        assert passes_b.read(passes_a.token(7, "ABCDEFGHIJ")) == (7, "ABCDEFGHIJ")

        # Nodes enrolled against B verify snapshots A signs.
        key_a = await a.http.get("/api/v1/snapshot-key")
        key_b = await b.http.get("/api/v1/snapshot-keys")
        assert key_a.headers["x-key-id"] == key_b.headers["x-key-id"]
        assert key_a.content == key_b.content == files["snapshot_public_key"].read_bytes()
        trusted = tmp_path / "trusted.pem"
        trusted.write_bytes(key_b.content)
        publisher_a: SnapshotPublisher = a.app.state.snapshots
        store = SnapshotStore(tmp_path / "snap.json", load_trusted_keys([trusted]))
        store.apply(publisher_a.signer.sign("n1", body(1)))
        assert store.current is not None and store.current.version == 1
