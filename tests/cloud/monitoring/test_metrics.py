"""`GET /metrics` of a running cloud: Prometheus text that parses, and says what happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network

import aiomqtt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from cloud.app import create_app
from cloud.db.tables import NOTIFICATION_DELIVERIES, NOTIFICATIONS
from cloud.settings import CloudSettings
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import RunningCloud, eventually, publish, start_cloud, unique

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(cloud: RunningCloud) -> tuple[str, Samples]:
    response = await cloud.http.get("/metrics", headers={"authorization": ""})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_refusals_by_reason_accepted_kinds_and_lag_are_scraped(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, desk = unique("node"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk])
    _, before = await scrape(cloud)
    for _ in range(3):
        await publisher.publish(contract.telemetry_topic(node, "presence"), b"{not json", qos=1)
    await publisher.publish(contract.telemetry_topic(node, "smell"), b"{}", qos=1)
    for present in (True, False):
        await publish(publisher, contract.Presence(node=node, desk=desk, present=present))

    async def all_counted() -> bool:
        _, now = await scrape(cloud)
        delta = value(now, "ruang_ingest_messages_total", kind="presence") - value(
            before, "ruang_ingest_messages_total", kind="presence"
        )
        return delta >= 2

    await eventually(all_counted)
    _, after = await scrape(cloud)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("ruang_ingest_rejected_total", reason="bad_json") >= 3
    assert grew("ruang_ingest_rejected_total", reason="unknown_kind") >= 1
    assert grew("ruang_ingest_received_total") >= 6
    # Live presence just published: late by far less than a minute, never negative.
    assert grew("ruang_ingest_lag_seconds_count", channel="telemetry") >= 2
    assert grew("ruang_ingest_lag_seconds_bucket", channel="telemetry", le="60.0") >= 2
    assert value(after, "ruang_ingest_lag_seconds_bucket", channel="telemetry", le="+Inf") == value(
        after, "ruang_ingest_lag_seconds_count", channel="telemetry"
    )
    assert value(after, "ruang_mqtt_connected") == 1
    assert value(after, "ruang_job_leader") == 1
    assert value(after, "ruang_db_pool_size") >= 1
    assert ("ruang_db_pool_in_use", ()) in after


async def test_request_latency_is_labelled_by_route_template_never_the_raw_path(
    cloud: RunningCloud,
) -> None:
    desk = unique("desk-private")
    assert (await cloud.http.get(f"/api/v1/desks/{desk}")).status_code == 404
    assert (await cloud.http.get(f"/no/such/{desk}")).status_code == 404
    assert (await cloud.http.get("/healthz")).status_code == 200
    text, samples = await scrape(cloud)
    assert desk not in text
    routes = {dict(labels).get("route") for (name, labels) in samples if "http_request" in name}
    assert "/api/v1/desks/{desk_id}" in routes
    assert "<unmatched>" in routes
    count = "ruang_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/api/v1/desks/{desk_id}", status="4xx") == 1
    assert value(samples, count, method="GET", route="/healthz", status="2xx") == 1


async def test_pending_notification_deliveries_are_the_outbox_depth(cloud: RunningCloud) -> None:
    _, before = await scrape(cloud)
    now = datetime.now(UTC)
    async with cloud.app.state.engine.begin() as conn:
        for n in range(2):
            result = await conn.execute(
                insert(NOTIFICATIONS).values(
                    address=f"guest{n}@example.org", kind="test", data={}, created_at=now
                )
            )
            # Due tomorrow: the dispatcher leaves them pending while the test scrapes.
            await conn.execute(
                insert(NOTIFICATION_DELIVERIES).values(
                    notification_id=result.inserted_primary_key[0],
                    channel="email",
                    status="pending",
                    next_attempt_at=now + timedelta(days=1),
                    created_at=now,
                )
            )
    text, after = await scrape(cloud)
    outbox = "ruang_outbox_pending"
    assert value(after, outbox, outbox="notification") == (
        value(before, outbox, outbox="notification") + 2
    )
    assert (outbox, (("outbox", "webhook"),)) in after
    assert "example.org" not in text


async def test_a_client_outside_the_allowed_networks_is_refused(settings: CloudSettings) -> None:
    settings = settings.model_copy(update={"metrics_allow_from": [IPv4Network("10.9.0.0/16")]})
    async with start_cloud(settings) as cloud:
        response = await cloud.http.get("/metrics")
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"


def test_the_allow_list_reads_comma_separated_networks_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUANG_METRICS_ALLOW_FROM", "127.0.0.0/8, 10.20.0.5/32")
    nets = [str(n) for n in CloudSettings().metrics_allow_from]
    assert nets == ["127.0.0.0/8", "10.20.0.5/32"]


def test_two_apps_in_one_process_keep_separate_registries() -> None:
    first, second = create_app(CloudSettings()), create_app(CloudSettings())
    assert first.state.metrics.registry is not second.state.metrics.registry
    first.state.metrics.http.labels("GET", "/x", "2xx").observe(0.1)
    assert b'route="/x"' in first.state.metrics.render()
    assert b'route="/x"' not in second.state.metrics.render()


async def test_behind_a_proxy_the_forwarded_client_is_the_one_checked(
    settings: CloudSettings,
) -> None:
    import httpx

    from tests.cloud.conftest import serving

    async with serving(settings) as (url, _), httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/metrics")).status_code == 200
        relayed = await http.get("/metrics", headers={"x-forwarded-for": "203.0.113.5"})
        assert relayed.status_code == 403


def test_the_lag_histogram_is_exposed_with_cumulative_buckets() -> None:
    from collections.abc import Iterator

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import Metric
    from prometheus_client.registry import Collector

    from cloud.ingest.stats import IngestStats
    from cloud.monitoring.metrics import lag_family

    stats = IngestStats()
    for lag in (0.02, 0.2, 2.0, 2.0, 99999.0):
        stats.accept("checkin", "events", lag)

    class Lag(Collector):
        def collect(self) -> Iterator[Metric]:
            yield lag_family(stats)

    registry = CollectorRegistry()
    registry.register(Lag())
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }

    def bucket(le: str) -> float:
        return samples[("ruang_ingest_lag_seconds_bucket", (("channel", "events"), ("le", le)))]

    assert [bucket(le) for le in ("0.01", "0.025", "0.25", "2.5", "86400.0", "+Inf")] == [
        0, 1, 2, 4, 4, 5,
    ]  # fmt: skip
    assert samples[("ruang_ingest_lag_seconds_count", (("channel", "events"),))] == 5
    assert samples[("ruang_ingest_lag_seconds_sum", (("channel", "events"),))] == pytest.approx(
        100003.22
    )
