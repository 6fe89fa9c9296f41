"""HTTP API behaviour: problem+json errors, readiness, LED commands, OpenAPI."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from cloud.settings import CloudSettings
from launch import devservers
from ruang import contract

from .binding_helpers import bind
from .conftest import RunningCloud, eventually, publish, start_cloud, unique

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_unknown_desk_is_a_problem_json_404(cloud: RunningCloud) -> None:
    r = await cloud.http.get("/api/v1/desks/no-such-desk")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 404 and body["title"] == "Desk not found"
    assert "no-such-desk" in body["detail"]


async def test_unknown_route_and_bad_body_are_problem_json(cloud: RunningCloud) -> None:
    r = await cloud.http.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await cloud.http.post("/api/v1/desks/x/led", json={"r": 999})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"]


async def test_healthz_and_readyz_when_everything_is_up(cloud: RunningCloud) -> None:
    assert (await cloud.http.get("/healthz")).json() == {"status": "ok"}
    r = await cloud.http.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "database": True, "mqtt": True}


async def test_readyz_is_503_while_the_broker_is_down(
    settings: CloudSettings, mosquitto_server: devservers.Mosquitto
) -> None:
    async with start_cloud(settings) as cloud:
        mosquitto_server.stop()
        try:

            async def not_ready() -> bool:
                return (await cloud.http.get("/readyz")).status_code == 503

            await eventually(not_ready)
            r = await cloud.http.get("/readyz")
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["mqtt"] is False and r.json()["database"] is True
        finally:
            mosquitto_server.start()

        async def ready_again() -> bool:
            return (await cloud.http.get("/readyz")).status_code == 200

        await eventually(ready_again)


async def test_led_command_is_published_to_the_node_serving_the_desk(
    cloud: RunningCloud, publisher: aiomqtt.Client, mosquitto_server: devservers.Mosquitto
) -> None:
    node, desk = unique("node"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk])
    await publish(
        publisher,
        contract.NodeState(node=node, online=True, bdseq=1, desks=(contract.DeskInfo(desk=desk),)),
    )

    async def desk_known() -> bool:
        return (await cloud.http.get(f"/api/v1/desks/{desk}")).status_code == 200

    await eventually(desk_known)
    async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as edge:
        await edge.subscribe(contract.node_command_subscription(node), qos=1)
        r = await cloud.http.post(
            f"/api/v1/desks/{desk}/led", json={"r": 0, "g": 255, "b": 0, "pattern": "blink"}
        )
        assert r.status_code == 202
        accepted = r.json()
        assert accepted["node"] == node and accepted["topic"] == contract.command_topic(node, "led")
        async with asyncio.timeout(10):
            message = await anext(edge.messages)
    _, led = contract.decode(message.topic.value, message.payload)  # type: ignore[arg-type]
    assert isinstance(led, contract.LedCommand)
    assert (led.desk, led.g, led.pattern, led.id) == (desk, 255, "blink", accepted["id"])


async def test_led_for_unknown_desk_is_404(cloud: RunningCloud) -> None:
    r = await cloud.http.post("/api/v1/desks/ghost/led", json={"r": 1, "g": 2, "b": 3})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_openapi_documents_every_endpoint(cloud: RunningCloud) -> None:
    paths = (await cloud.http.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/desks",
        "/api/v1/desks/{desk_id}",
        "/api/v1/desks/{desk_id}/led",
        "/api/v1/nodes",
        "/api/v1/ingest/stats",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    assert "404" in paths["/api/v1/desks/{desk_id}"]["get"]["responses"]
