"""Enrolment over the HTTP API: single-use tokens, issued credentials, broker files, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.fleet.broker_credentials import verify_password
from cloud.fleet.enrolment import create_token
from cloud.settings import CloudSettings
from launch import devservers
from tests.cloud.conftest import RunningCloud, unique

CA_PEM = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n"


@pytest.fixture
def settings(
    database_url: str, mosquitto_server: devservers.Mosquitto, tmp_path: Path
) -> CloudSettings:
    (tmp_path / "ca.pem").write_text(CA_PEM)
    return CloudSettings(
        database_url=database_url,
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-cloud-test"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        mosquitto_password_file=tmp_path / "broker" / "passwd",
        mosquitto_acl_file=tmp_path / "broker" / "acl",
        public_mqtt_url="mqtts://broker.example:8883",
        mqtt_ca_file=tmp_path / "ca.pem",
        cloud_mqtt_password="cloud-secret",  # type: ignore[arg-type]
    )


async def new_token(cloud: RunningCloud, **body: object) -> dict[str, str]:
    response = await cloud.http.post("/api/v1/enrolment-tokens", json=body)
    assert response.status_code == 201, response.text
    token: dict[str, str] = response.json()
    return token


def password_lines(settings: CloudSettings) -> dict[str, str]:
    assert settings.mosquitto_password_file is not None
    if not settings.mosquitto_password_file.exists():
        return {}  # nothing was ever enrolled or revoked
    lines = settings.mosquitto_password_file.read_text().splitlines()
    return dict(line.split(":", 1) for line in lines)


async def test_enrolment_returns_credentials_and_writes_password_and_acl_files(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    config = {"desk_units": [{"desk": "d-1", "port": "/dev/ttyUSB0"}]}
    token = await new_token(cloud, node_id="node-7", config=config)
    response = await cloud.http.post(
        "/api/v1/enroll", json={"token": token["token"], "hardware_id": "pi-123"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["node_id"] == body["mqtt_username"] == "node-7"
    assert body["mqtt_url"] == "mqtts://broker.example:8883"
    assert body["ca_cert_pem"] == CA_PEM
    assert body["config"] == config

    lines = password_lines(settings)
    assert verify_password(body["mqtt_password"], lines["node-7"])
    assert verify_password("cloud-secret", lines["ruang-cloud"])
    assert settings.mosquitto_acl_file is not None
    acl = settings.mosquitto_acl_file.read_text()
    assert "pattern read ruang/v1/nodes/%u/commands/#" in acl
    assert "user ruang-cloud" in acl


async def test_token_is_single_use(cloud: RunningCloud) -> None:
    token = await new_token(cloud)
    first = await cloud.http.post("/api/v1/enroll", json={"token": token["token"]})
    assert first.status_code == 200
    second = await cloud.http.post("/api/v1/enroll", json={"token": token["token"]})
    assert second.status_code == 410
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["title"] == "Enrolment token already used"


async def test_expired_token_is_refused(cloud: RunningCloud, settings: CloudSettings) -> None:
    engine = cloud.app.state.engine
    async with engine.begin() as conn:
        issued = await create_token(
            conn,
            settings,
            node_id="node-late",
            ttl_s=60,
            config={},
            now=datetime.now(UTC) - timedelta(hours=1),
        )
    response = await cloud.http.post("/api/v1/enroll", json={"token": issued.token})
    assert response.status_code == 410
    assert response.json()["title"] == "Enrolment token expired"
    assert "node-late" not in password_lines(settings)


async def test_unknown_token_is_refused_as_unauthorised(cloud: RunningCloud) -> None:
    response = await cloud.http.post("/api/v1/enroll", json={"token": "not-a-token"})
    assert response.status_code == 401
    assert response.json()["title"] == "Unknown enrolment token"


async def test_token_without_node_id_gets_a_generated_one(cloud: RunningCloud) -> None:
    token = await new_token(cloud)
    assert token["node_id"].startswith("ikn-node-")
    assert len(token["token"]) >= 43  # 32 random bytes, URL-safe base64


async def test_token_for_the_clouds_own_broker_account_is_refused(cloud: RunningCloud) -> None:
    response = await cloud.http.post("/api/v1/enrolment-tokens", json={"node_id": "ruang-cloud"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_reenrolment_replaces_the_nodes_password(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    passwords = []
    for _ in range(2):
        token = await new_token(cloud, node_id="node-re")
        response = await cloud.http.post("/api/v1/enroll", json={"token": token["token"]})
        passwords.append(response.json()["mqtt_password"])
    hashed = password_lines(settings)["node-re"]
    assert verify_password(passwords[1], hashed) and not verify_password(passwords[0], hashed)


async def test_revocation_removes_the_node_from_the_password_file(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    token = await new_token(cloud, node_id="node-gone")
    await cloud.http.post("/api/v1/enroll", json={"token": token["token"]})
    assert "node-gone" in password_lines(settings)

    response = await cloud.http.delete("/api/v1/nodes/node-gone/credentials")
    assert response.status_code == 204
    assert "node-gone" not in password_lines(settings)
    again = await cloud.http.delete("/api/v1/nodes/node-gone/credentials")
    assert again.status_code == 404
