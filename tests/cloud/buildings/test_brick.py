"""The Brick Schema export: it validates against Brick's shapes (brickschema), holds every
floor, zone, room, desk and sensor of the site and nothing of another site or of any
person, and its time-series ids name the series the telemetry sink really writes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import brickschema
import httpx
import pytest
import rdflib
from rdflib.namespace import RDF, SH
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.buildings import brick
from cloud.buildings.layout import SAMPLE_LAYOUT, apply_layout, load_layout, parse_layout
from cloud.buildings.turtle import Document
from cloud.db.engine import make_engine, migrate
from cloud.db.tables import ACCESS_DOORS, BADGES, DESKS, NODE_CONFIGS, PEOPLE, TRANSPORT_VEHICLES
from cloud.errors import NotFound
from cloud.telemetry import lineprotocol
from launch.cli import main
from ruang import contract
from tests.cloud.conftest import RunningCloud

BRICK = rdflib.Namespace("https://brickschema.org/schema/Brick#")
REF = rdflib.Namespace("https://brickschema.org/schema/Brick/ref#")
RUANG = rdflib.Namespace("urn:ruang:schema#")
SITE = "ikn-kipp"
NS = f"urn:ruang:{SITE}/"
# Personal data seeded into the site: none of it may appear in the export.
PERSON = {"id": "p-rahasia", "name": "Siti Rahmawati", "nip": "199603142018022002"}
BADGE_UID = "049ACB4375FB67"
# Devices only a node's desired config names (cloud/fleet/node_config.py).
NODE_CONFIG = {
    "radars": [
        {"device": "radar-d02", "desk": "L1-D02", "port": "/dev/ttyUSB1"},
        {"device": "radar-r9", "room": "xb-room", "port": "/dev/ttyUSB2"},  # not this site's
        {"device": "radar-x", "desk": "no-such-desk", "port": "/dev/ttyUSB3"},
    ],
    "ble": {
        "enabled": True,
        "scanners": [
            {"id": "ble-z1", "zone": "A1-L1-Z1", "adapter": "hci0"},
            {"id": "ble-d03", "zone": "A1-L1-Z1", "desk": "L1-D03", "adapter": "hci1"},
        ],
    },
}
OTHER_SITE = {
    "site": {"id": "xb-site", "name": "Site B"},
    "buildings": [{"id": "xb-bld", "name": "Gedung B", "floors": [{
        "id": "xb-floor", "level": 1, "name": "Lantai B", "zones": [{
            "id": "xb-zone", "name": "Zona B",
            "desks": [{"id": "xb-desk", "node": "xb-node"}],
            "rooms": [{"id": "xb-room", "name": "Ruang B", "capacity": 4, "node": "xb-node"}],
        }],
    }]}],
}  # fmt: skip


async def _world(database_url: str) -> AsyncEngine:
    """The sample site with a door, a pool car, configured radar and BLE scanners and a
    person at a desk; and a second site."""
    await migrate(database_url)
    engine = make_engine(database_url)
    await apply_layout(engine, load_layout(SAMPLE_LAYOUT))
    await apply_layout(engine, parse_layout(OTHER_SITE))
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(PEOPLE).values(kind="asn", role="asn", agency="Otorita", site_id=SITE, **PERSON)
        )
        await conn.execute(
            insert(BADGES).values(kind="nfc", uid=BADGE_UID, person_id=PERSON["id"], issued_at=now)
        )
        await conn.execute(
            update(DESKS)
            .where(DESKS.c.id == "L1-D01")
            .values(assigned_person_id=PERSON["id"], occupant_badge=BADGE_UID)
        )
        await conn.execute(
            insert(ACCESS_DOORS).values(
                id="A1-L1-lobby", site_id=SITE, floor_id="A1-L1", name="Pintu Lobi L1",
                node_id="ikn-door-l1", anti_passback=False, anti_passback_reset_s=3600,
            )
        )  # fmt: skip
        await conn.execute(
            insert(TRANSPORT_VEHICLES).values(
                id="car-01", kind="poolcar", label="Mobil Dinas 01", capacity=5, seats=5,
                wheelchair_accessible=False, plate="KT 1 IKN", site_id=SITE, node_id="ikn-car-01",
                state="at_depot", state_changed_at=now, created_at=now,
            )
        )  # fmt: skip
        await conn.execute(
            insert(NODE_CONFIGS).values(
                node_id="ikn-demo-l1", version=1, config=NODE_CONFIG, updated_at=now
            )
        )
    return engine


async def _export(database_url: str) -> str:
    engine = await _world(database_url)
    try:
        async with engine.connect() as conn:
            return await brick.site_brick(conn, SITE, bucket="ruang")
    finally:
        await engine.dispose()


def _graph(text: str) -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(data=text, format="turtle")
    return graph


def _of_class(graph: rdflib.Graph, cls: rdflib.URIRef) -> set[str]:
    return {str(s).removeprefix(NS) for s in graph.subjects(RDF.type, cls)}


def _series(graph: rdflib.Graph, point: str) -> str:
    (ref,) = graph.objects(rdflib.URIRef(NS + point), REF.hasExternalReference)
    assert (ref, RDF.type, REF.TimeseriesReference) in graph
    assert graph.value(ref, REF.storedAt) == rdflib.Literal("influxdb bucket ruang")
    return str(graph.value(ref, REF.hasTimeseriesId))


def _line_matches(series: str, line: str) -> bool:
    """A line of the sink belongs to the series: same measurement, the series' tags among
    the line's tags, its field among the line's fields."""
    head, field = series.split(" ")
    measurement, *tags = head.split(",")
    line_head, line_fields, _ts = line.split(" ")
    line_measurement, *line_tags = line_head.split(",")
    fields = {f.split("=", 1)[0] for f in line_fields.split(",")}
    return measurement == line_measurement and set(tags) <= set(line_tags) and field in fields


async def test_export_holds_the_sample_sites_places_and_sensors(database_url: str) -> None:
    graph = _graph(await _export(database_url))
    layout = load_layout(SAMPLE_LAYOUT)
    floors = [f for b in layout.buildings for f in b.floors]
    zones = [z for f in floors for z in f.zones]
    rooms = [r for z in zones for r in z.rooms]
    desks = [d for _, _, d in layout.desks()]

    assert _of_class(graph, BRICK.Site) == {f"site.{SITE}"}
    assert _of_class(graph, BRICK.Building) == {f"building.{b.id}" for b in layout.buildings}
    assert _of_class(graph, BRICK.Floor) == {f"floor.{f.id}" for f in floors}
    assert _of_class(graph, BRICK.Open_Office) == {f"zone.{z.id}" for z in zones}
    assert _of_class(graph, BRICK.Conference_Room) == {f"room.{r.id}" for r in rooms}
    assert _of_class(graph, RUANG.Desk) == {f"desk.{d.id}" for d in desks}
    assert len(desks) == 72 and len(rooms) == 6 and len(floors) == 3
    # A desk unit per desk, a radar per room plus the configured desk radar, two BLE scanners.
    assert _of_class(graph, BRICK.Occupancy_Sensor_Equipment) == (
        {f"deskunit.{d.id}" for d in desks}
        | {f"radar.{r.sensor}" for r in rooms}
        | {"radar.radar-d02"}
    )
    assert _of_class(graph, BRICK.Sensor_Equipment) == {"ble.ble-z1", "ble.ble-d03", "gps.car-01"}
    assert _of_class(graph, BRICK.Access_Reader) == {"door.A1-L1-lobby"}
    assert _of_class(graph, RUANG.Vehicle) == {"vehicle.car-01"}
    assert _of_class(graph, BRICK.Gateway) == {
        "node.ikn-demo-l1", "node.ikn-a1-l2", "node.ikn-a1-l3", "node.ikn-door-l1",
        "node.ikn-car-01",
    }  # fmt: skip
    sensors = _of_class(graph, BRICK.Occupancy_Sensor)
    assert len(sensors) == len(desks) + len(rooms) + 1 + 2

    def linked(s: str, p: rdflib.URIRef, o: str) -> bool:
        return (rdflib.URIRef(NS + s), p, rdflib.URIRef(NS + o)) in graph

    for floor_spec in floors:
        for zone in floor_spec.zones:
            assert linked(f"floor.{floor_spec.id}", BRICK.hasPart, f"zone.{zone.id}")
            assert linked(f"zone.{zone.id}", BRICK.isPartOf, f"floor.{floor_spec.id}")
            for desk in zone.desks:
                assert linked(f"zone.{zone.id}", BRICK.hasPart, f"desk.{desk.id}")
                assert linked(f"deskunit.{desk.id}", BRICK.hasLocation, f"desk.{desk.id}")
                assert linked(f"desk.{desk.id}", BRICK.isLocationOf, f"deskunit.{desk.id}")
                point = f"deskunit-presence.{desk.id}"
                assert linked(f"deskunit.{desk.id}", BRICK.hasPoint, point)
                assert linked(point, BRICK.isPointOf, f"deskunit.{desk.id}")
    assert linked("deskunit.L1-D01", BRICK.feeds, "node.ikn-demo-l1")
    assert linked("node.ikn-demo-l1", BRICK.hasLocation, "floor.A1-L1")
    assert linked("radar.radar-d02", BRICK.hasLocation, "desk.L1-D02")
    assert linked("ble.ble-z1", BRICK.hasLocation, "zone.A1-L1-Z1")
    assert linked("ble.ble-d03", BRICK.hasLocation, "desk.L1-D03")
    assert linked("door.A1-L1-lobby", BRICK.hasLocation, "floor.A1-L1")
    assert linked("vehicle.car-01", BRICK.hasPart, "gps.car-01")
    assert linked("gps.car-01", BRICK.feeds, "node.ikn-car-01")


async def test_export_has_no_personal_data_and_no_other_site(database_url: str) -> None:
    text = await _export(database_url)
    for secret in (*PERSON.values(), BADGE_UID, "KT 1 IKN"):
        assert secret not in text
    assert "xb-" not in text and "Site B" not in text


async def test_series_ids_name_the_lines_the_telemetry_sink_writes(database_url: str) -> None:
    graph = _graph(await _export(database_url))
    node, ts = "ikn-demo-l1", 1_750_000_000.0
    written = {
        "deskunit-presence.L1-D05": lineprotocol.presence(
            contract.Presence(node=node, ts=ts, desk="L1-D05", present=True)
        ),
        "radar-presence.radar-d02": lineprotocol.presence(
            contract.Presence(node=node, ts=ts, desk="L1-D02", present=True, source="radar")
        ),
        "deskunit-uptime.L1-D05": lineprotocol.heartbeat(
            contract.Heartbeat(node=node, ts=ts, desk="L1-D05", uptime_s=60)
        ),
        "radar-presence.A1-L1-R1-occupancy": lineprotocol.room_presence(
            contract.RoomPresence(node=node, ts=ts, room="A1-L1-R1", present=True, sensor="s1")
        ),
        "ble-presence.ble-z1": lineprotocol.badge_presence(
            contract.BadgePresence(
                node=node, ts=ts, zone="A1-L1-Z1", badge="ble:b-1", present=True, confidence=0.9
            ),
            str,
        ),
        "node-online.ikn-demo-l1": lineprotocol.node_state(node, True, ts, bdseq=3),
        "door-online.A1-L1-lobby": lineprotocol.device_health(
            contract.DeviceHealth(
                node="ikn-door-l1", ts=ts, device="A1-L1-lobby", kind="door", online=True
            ),
            str,
        ),
        "gps-lat.car-01": lineprotocol.position(
            contract.Position(
                node="ikn-car-01",
                ts=ts,
                vehicle="car-01",
                lat=0.9,
                lon=116.7,
                speed_kmh=30.0,
                fix_quality=1,
            )
        ),
    }
    for point, line in written.items():
        assert _line_matches(_series(graph, point), line), (point, line)
    # ... and not another desk's line: the join is selective.
    other = lineprotocol.presence(contract.Presence(node=node, ts=ts, desk="L1-D06", present=True))
    assert not _line_matches(_series(graph, "deskunit-presence.L1-D05"), other)


async def test_unknown_site_is_not_found(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/brick.sqlite3"
    await migrate(url)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(NotFound):
                await brick.site_brick(conn, "nope", bucket="ruang")
    finally:
        await engine.dispose()


def test_ids_that_need_escaping_stay_valid_turtle() -> None:
    doc = Document("urn:ruang:x/")
    odd = doc.add('desk.a b"c>.', ["brick:Space"], 'Meja "sudut"\n\\ lantai 1')
    plain = doc.add("desk.L1-D01", ["brick:Space"], "Meja")
    odd.link("brick:isPartOf", plain.key)
    graph = _graph(doc.render())
    subject = rdflib.URIRef("urn:ruang:x/desk.a%20b%22c%3E.")
    assert graph.value(subject, rdflib.RDFS.label) == rdflib.Literal('Meja "sudut"\n\\ lantai 1')
    assert (subject, BRICK.isPartOf, rdflib.URIRef("urn:ruang:x/desk.L1-D01")) in graph


def _report(graph: brickschema.Graph) -> set[tuple[str, str, str, str]]:
    _conforms, results, _text = graph.validate()
    out = set()
    for result in results.subjects(RDF.type, SH.ValidationResult):
        out.add(tuple(
            str(results.value(result, p))
            for p in (SH.focusNode, SH.resultSeverity, SH.sourceShape, SH.resultMessage)
        ))  # fmt: skip
    return out


# The version the export is written for, and the newest brickschema ships (a reader of today).
@pytest.mark.parametrize("version", [brick.BRICK_VERSION, "1.5"])
async def test_export_validates_against_the_brick_shapes(tmp_path: Path, version: str) -> None:
    text = await _export(f"sqlite+aiosqlite:///{tmp_path}/brick.sqlite3")
    # brickschema ships Brick without QUDT, so Brick's own quantity shapes report
    # violations on an empty model too: those are the baseline, the export adds none.
    baseline = _report(brickschema.Graph(load_brick=True, brick_version=version))
    model = brickschema.Graph(load_brick=True, brick_version=version)
    model.parse(data=text, format="turtle")
    # A probe the shapes must catch, validated with the export: a time-series reference
    # without its id (proves the shapes ran over the model's nodes).
    probe = rdflib.URIRef("urn:ruang:probe/point")
    probe_ref = rdflib.URIRef("urn:ruang:probe/ref")
    model.add((probe, RDF.type, BRICK.Occupancy_Sensor))
    model.add((probe, REF.hasExternalReference, probe_ref))
    model.add((probe_ref, RDF.type, REF.TimeseriesReference))
    added = _report(model) - baseline
    violations = {r[0] for r in added if r[1] == str(SH.Violation)}
    assert violations == {str(probe_ref)}
    # What remains are Brick's notes that 1.4 moves these 1.3 classes to REC (warnings).
    for focus, severity, _shape, message in added:
        if focus == str(probe_ref):
            continue
        assert focus.startswith(NS) and severity == str(SH.Warning), (focus, message)
        assert re.search(r"deprecated in version 1\.4", message), message


@pytest.fixture
async def seeded(cloud: RunningCloud) -> AsyncIterator[RunningCloud]:
    await apply_layout(cloud.app.state.engine, load_layout(SAMPLE_LAYOUT))
    yield cloud


async def test_api_serves_turtle_to_the_sites_operators(seeded: RunningCloud) -> None:
    r = await seeded.http.get(f"/api/v1/sites/{SITE}/brick.ttl")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/turtle")
    assert len(_of_class(_graph(r.text), RUANG.Desk)) == 72
    missing = await seeded.http.get("/api/v1/sites/nope/brick.ttl")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    transport = httpx.ASGITransport(app=seeded.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud") as anonymous:
        assert (await anonymous.get(f"/api/v1/sites/{SITE}/brick.ttl")).status_code == 401


def test_cli_exports_the_same_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/brick.sqlite3"
    expected = asyncio.run(_export(url))
    monkeypatch.setenv("RUANG_DATABASE_URL", url)
    monkeypatch.setenv("RUANG_INFLUX_BUCKET", "ruang")
    out = tmp_path / "site.ttl"
    assert main(["brick", "export", SITE, "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == expected
    assert main(["brick", "export", "nope"]) == 2


async def test_ids_with_dots_never_share_a_name(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/brick.sqlite3"
    await migrate(url)
    engine = make_engine(url)
    desks = [{"id": "d", "node": "n"}, {"id": "d.presence", "node": "n"}]
    layout = {
        "site": {"id": "xc", "name": "C"},
        "buildings": [{"id": "b", "name": "B", "floors": [{"id": "f", "level": 1, "name": "F",
            "zones": [{"id": "z", "name": "Z", "desks": desks}]}]}],
    }  # fmt: skip
    try:
        await apply_layout(engine, parse_layout(layout))
        async with engine.connect() as conn:
            graph = _graph(await brick.site_brick(conn, "xc", bucket="ruang"))
    finally:
        await engine.dispose()
    assert len(set(graph.subjects(RDF.type, BRICK.Occupancy_Sensor))) == 2
    assert len(set(graph.subjects(RDF.type, BRICK.Occupancy_Sensor_Equipment))) == 2
