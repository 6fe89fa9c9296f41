"""A broker cluster's nodes as one comma-separated mqtt_url: parsing, round-robin, settings."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.fleet.enrolment import public_mqtt_url
from cloud.mqtt.session import MqttSession
from cloud.runtime.roles import ingest_subscriptions
from cloud.settings import CloudSettings
from edge.settings import EdgeSettings
from edge.uplink import Uplink
from launch import devservers
from ruang import contract
from ruang.backoff import Backoff
from ruang.mqtt_url import BrokerRing, parse_broker_url, parse_broker_urls
from tests.helpers import eventually

THREE = "mqtt://10.0.0.11:1883, mqtt://10.0.0.12:1883,mqtt://10.0.0.13:1884"


def test_a_comma_separated_list_gives_each_node_in_order() -> None:
    nodes = parse_broker_urls(THREE)
    assert [(b.host, b.port) for b in nodes] == [
        ("10.0.0.11", 1883),
        ("10.0.0.12", 1883),
        ("10.0.0.13", 1884),
    ]


def test_a_single_url_is_a_list_of_one_parsed_as_before() -> None:
    url = "mqtts://a%2Cb:p%2Cw@broker.example"
    assert parse_broker_urls(url) == [parse_broker_url(url)]
    assert parse_broker_urls(url)[0].password == "p,w"  # an escaped comma is no separator


@pytest.mark.parametrize("value", ["", " , ", "mqtt://a:1883,http://b:1883", "mqtt://a:x"])
def test_an_empty_list_or_a_bad_member_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_broker_urls(value)


def test_the_ring_stays_on_a_node_until_told_and_then_goes_round() -> None:
    ring = BrokerRing.from_urls(THREE)
    assert ring.current.host == "10.0.0.11"
    assert ring.current.host == "10.0.0.11"
    assert [ring.advance().host for _ in range(4)] == [
        "10.0.0.12",
        "10.0.0.13",
        "10.0.0.11",
        "10.0.0.12",
    ]


def test_a_dead_node_costs_one_short_wait_and_the_backoff_grows_once_per_failed_round() -> None:
    ring = BrokerRing.from_urls("mqtt://a:1883,mqtt://b:1883,mqtt://c:1883")
    backoff = Backoff(base=0.5, cap=30.0, rng=random.Random(7))
    waits = []
    for _ in range(6):  # every node fails, twice round
        ring.advance()
        waits.append(ring.delay(backoff))
    # Mid-round: at most the base; at the end of each round the backoff takes a step.
    assert all(w <= 0.5 for i, w in enumerate(waits) if i % 3 != 2)
    assert backoff.attempt == 2
    ring.reached()  # a node answered: the next failure starts a fresh round
    ring.advance()
    assert ring.delay(backoff) <= 0.5 and backoff.attempt == 2


def test_a_single_broker_backs_off_on_every_failure_as_before() -> None:
    ring = BrokerRing.from_urls("mqtt://a:1883")
    backoff = Backoff(base=0.5, cap=30.0, rng=random.Random(7))
    for attempt in range(1, 4):
        ring.advance()
        ring.delay(backoff)
        assert backoff.attempt == attempt


def test_a_ring_of_one_always_gives_that_broker() -> None:
    ring = BrokerRing.from_urls("mqtt://127.0.0.1:1883")
    assert ring.advance() == ring.current == parse_broker_url("mqtt://127.0.0.1:1883")


def test_edge_settings_take_a_node_list_and_refuse_a_bad_member(tmp_path: Path) -> None:
    assert EdgeSettings(node_id="n1", mqtt_url=THREE, state_dir=tmp_path).mqtt_url == THREE
    with pytest.raises(ValidationError, match="mqtt_url"):
        EdgeSettings(node_id="n1", mqtt_url=THREE + ",ftp://x", state_dir=tmp_path)


def test_cloud_settings_list_every_node_and_keep_the_first_as_the_broker() -> None:
    s = CloudSettings(mqtt_url=THREE)
    assert [b.host for b in s.mqtt_brokers] == ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
    assert s.mqtt_broker == s.mqtt_brokers[0]


def test_cloud_settings_refuse_nodes_with_different_logins() -> None:
    with pytest.raises(ValidationError, match="different logins"):
        CloudSettings(mqtt_url="mqtt://a:pw@10.0.0.11:1883,mqtt://b:pw@10.0.0.12:1883")
    same = CloudSettings(mqtt_url="mqtt://a:pw@10.0.0.11:1883,mqtt://a:pw@10.0.0.12:1883")
    assert same.mqtt_login == ("a", "pw")


def test_enrolled_nodes_get_every_node_without_the_clouds_login() -> None:
    s = CloudSettings(mqtt_url="mqtt://a:pw@10.0.0.11:1883,mqtts://a:pw@10.0.0.12:8883")
    assert public_mqtt_url(s) == "mqtt://10.0.0.11:1883,mqtts://10.0.0.12:8883"


def test_an_ingest_worker_subscribes_plainly_on_a_broker_without_shared_subscriptions() -> None:
    # The NATS tier grants $share/... filters but delivers nothing on them.
    s = CloudSettings(role="ingest", mqtt_shared_subscriptions=False)
    assert ingest_subscriptions(s) == contract.CLOUD_SUBSCRIPTIONS
    shared = ingest_subscriptions(CloudSettings(role="ingest"))
    assert all(topic.startswith("$share/") for topic, _ in shared)


@pytest.mark.servers
async def test_uplink_and_cloud_session_move_past_a_dead_node_to_a_live_one(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    # Nothing listens on the first port: both must end up on the broker listed second.
    urls = f"mqtt://127.0.0.1:{devservers.free_port()},{mosquitto_server.url}"

    async def ignore(_: contract.Message) -> None:
        return None

    uplink = Uplink(
        EdgeSettings(node_id="ring-edge", mqtt_url=urls, state_dir=tmp_path / "edge"),
        birth=lambda b: contract.NodeState(node="ring-edge", online=True, bdseq=b),
        on_command=ignore,
    )
    session = MqttSession(
        CloudSettings(mqtt_url=urls, mqtt_client_id="ring-cloud"),
        lambda _: None,
        [],
        clean_session=True,
    )
    task = asyncio.create_task(uplink.run())
    session.start()
    try:
        async with asyncio.timeout(30):
            await uplink.connected.wait()

        async def cloud_connected() -> bool:
            return session.connected

        await eventually(cloud_connected, what="cloud session connected")
        assert uplink.broker.port == mosquitto_server.port
        assert session.broker.port == mosquitto_server.port
        assert uplink.stats.reconnects >= 1  # it did try the dead node first
    finally:
        await session.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
