"""Telemetry sinks against real storage: VictoriaMetrics (line protocol) and local SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from cloud.settings import CloudSettings
from cloud.telemetry import lineprotocol
from cloud.telemetry.sinks import InfluxSink, LocalSqliteSink, make_sink
from launch import devservers
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import eventually, publish, start_cloud, unique


async def exported(victoria: devservers.VictoriaMetrics, node: str) -> list[dict[str, Any]]:
    """The node's presence series, once VictoriaMetrics made them searchable.

    VictoriaMetrics indexes a new series asynchronously (about a second after
    the write is acknowledged, force_flush notwithstanding), so poll.
    """
    found: list[dict[str, Any]] = []

    async def searchable() -> bool:
        found[:] = await asyncio.to_thread(
            victoria.export, f'{{__name__="presence_present",node="{node}"}}'
        )
        return bool(found)

    await eventually(searchable)
    return found


async def test_influx_sink_makes_presence_readable_in_victoriametrics(
    victoria: devservers.VictoriaMetrics,
) -> None:
    node, desk = unique("node"), unique("desk")
    sink = InfluxSink(victoria.url)
    samples = [
        contract.Presence(node=node, desk=desk, present=p, ts=1_700_000_000.0 + i)
        for i, p in enumerate([True, False, True])
    ]
    sink.write([lineprotocol.presence(m) for m in samples])
    async with asyncio.timeout(15):
        await sink.flush()
    await sink.close()
    assert sink.stats.written == 3 and sink.stats.failed == 0
    series = await exported(victoria, node)
    assert len(series) == 1
    assert series[0]["metric"] == {
        "__name__": "presence_present",
        "node": node,
        "desk": desk,
        "source": "deskunit",
    }
    assert series[0]["values"] == [1, 0, 1]
    assert series[0]["timestamps"] == [1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000]


async def test_influx_sink_counts_failed_writes_without_raising() -> None:
    sink = InfluxSink(f"http://127.0.0.1:{devservers.free_port()}", max_retries=0)
    sink.write(["presence,node=n,desk=d present=1i 1"])
    async with asyncio.timeout(15):
        await sink.flush()
    await sink.close()
    assert sink.stats.failed == 1 and sink.stats.last_error


async def test_local_sink_keeps_lines_in_sqlite(tmp_path: Path) -> None:
    sink = LocalSqliteSink(tmp_path / "t" / "telemetry.sqlite3")
    lines = [
        lineprotocol.heartbeat(contract.Heartbeat(node="n1", desk="d1", uptime_s=i, ts=5.0))
        for i in range(3)
    ]
    sink.write(lines)
    async with asyncio.timeout(15):
        await sink.flush()
    await sink.close()
    assert sink.read_lines() == lines
    assert lines[0] == "heartbeat,node=n1,desk=d1 uptime_s=0i 5000000000"


def test_make_sink_falls_back_to_local_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = CloudSettings(
        influx_url="",
        telemetry_sqlite_path=tmp_path / "t.sqlite3",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3",
    )
    with caplog.at_level("WARNING"):
        sink = make_sink(settings)
    assert isinstance(sink, LocalSqliteSink)
    assert [r.message for r in caplog.records if "kept locally" in r.message] == [
        f"RUANG_INFLUX_URL is not set: telemetry is kept locally in {sink.path}"
    ]
    asyncio.run(sink.close())


def test_tags_are_escaped() -> None:
    assert lineprotocol.escape_tag("a b,c=d\\e") == "a\\ b\\,c\\=d\\\\e"
    assert lineprotocol.node_state("n1", True, 1.5, bdseq=2) == (
        "node_state,node=n1 online=1i,bdseq=2i 1500000000"
    )


def test_node_health_line_has_every_field() -> None:
    line = lineprotocol.node_health(
        contract.NodeHealth(
            node="n1",
            uptime_s=1.5,
            rss_bytes=10,
            rejected_frames=2,
            mqtt_reconnects=3,
            units_online=4,
            ts=2.0,
        )
    )
    assert line == (
        "node_health,node=n1 uptime_s=1.5,rss_bytes=10i,rejected_frames=2i,"
        "mqtt_reconnects=3i,units_online=4i 2000000000"
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_ingested_presence_reaches_victoriametrics_through_the_app(
    settings: CloudSettings, victoria: devservers.VictoriaMetrics, publisher: aiomqtt.Client
) -> None:
    settings = settings.model_copy(update={"influx_url": victoria.url})
    node, desk = unique("node"), unique("desk")
    async with start_cloud(settings) as cloud:
        await bind(cloud.app.state.engine, node, [desk])
        await publish(publisher, contract.Presence(node=node, desk=desk, present=True))

        async def applied() -> bool:
            r = await cloud.http.get(f"/api/v1/desks/{desk}")
            return r.status_code == 200 and r.json()["present"] is True

        await eventually(applied)
    # Leaving the app closed the sink, which sends whatever it still held.
    series = await exported(victoria, node)
    assert [s["metric"]["desk"] for s in series] == [desk]
