"""Desired node config over the API: stored, published retained, compared with the node's report."""

from __future__ import annotations

import aiomqtt
import pytest

from launch import devservers
from ruang import contract
from tests.cloud.conftest import RunningCloud, eventually, publish, unique

pytestmark = pytest.mark.servers


async def test_put_publishes_retained_and_get_shows_desired_vs_reported(
    cloud: RunningCloud, publisher: aiomqtt.Client, mosquitto_server: devservers.Mosquitto
) -> None:
    node = unique("node-cfg")
    config = {"desk_units": [{"desk": "L1-D01", "port": "/dev/ttyUSB0"}], "away_s": 900}
    response = await cloud.http.put(f"/api/v1/nodes/{node}/config", json={"config": config})
    assert response.status_code == 202, response.text
    view = response.json()
    assert view["desired"]["version"] == 1 and view["reported"] is None and not view["in_sync"]

    # Retained: a node connecting afterwards still gets it.
    async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as node_client:
        await node_client.subscribe(contract.command_topic(node, "config"), qos=1)
        async for msg in node_client.messages:
            assert msg.retain
            _, push = contract.decode(str(msg.topic), msg.payload)  # type: ignore[arg-type]
            assert isinstance(push, contract.ConfigPush)
            assert push.version == 1 and push.config == config
            break

    await publish(
        publisher, contract.ConfigStatus(node=node, version=1, applied=True, active_version=1)
    )

    async def reported() -> bool:
        got = (await cloud.http.get(f"/api/v1/nodes/{node}/config")).json()
        return bool(got["in_sync"])

    await eventually(reported)
    second = await cloud.http.put(f"/api/v1/nodes/{node}/config", json={"config": {"away_s": 0}})
    assert second.json()["desired"]["version"] == 2 and not second.json()["in_sync"]
    await publish(
        publisher,
        contract.ConfigStatus(
            node=node, version=2, applied=False, error="away_s too small", active_version=1
        ),
    )

    async def refused() -> bool:
        got = (await cloud.http.get(f"/api/v1/nodes/{node}/config")).json()
        return got["reported"]["version"] == 2 and got["reported"]["error"] == "away_s too small"

    await eventually(refused)


async def test_put_refuses_identity_keys_and_old_versions(cloud: RunningCloud) -> None:
    node = unique("node-cfg")
    bad = await cloud.http.put(
        f"/api/v1/nodes/{node}/config", json={"config": {"node_id": "other", "mqtt_password": "x"}}
    )
    assert bad.status_code == 422 and "not settable remotely" in bad.json()["detail"]
    ok = await cloud.http.put(
        f"/api/v1/nodes/{node}/config", json={"config": {"away_s": 600}, "version": 5}
    )
    assert ok.status_code == 202
    old = await cloud.http.put(
        f"/api/v1/nodes/{node}/config", json={"config": {"away_s": 700}, "version": 5}
    )
    assert old.status_code == 409
    got = (await cloud.http.get(f"/api/v1/nodes/{node}/config")).json()
    assert got["desired"]["version"] == 5 and got["desired"]["config"] == {"away_s": 600}
