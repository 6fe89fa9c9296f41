"""Layout files: clear errors naming the path, the sample building, idempotent apply."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select, text

from cloud.buildings.layout import (
    SAMPLE_LAYOUT,
    LayoutError,
    apply_layout,
    load_layout,
    parse_layout,
)
from cloud.db.engine import make_engine, migrate
from cloud.db.models import Desk, Room


def _sample() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SAMPLE_LAYOUT.read_text(encoding="utf-8"))
    return data


def test_sample_layout_loads() -> None:
    layout = load_layout(SAMPLE_LAYOUT)
    assert layout.site.timezone == "Asia/Makassar"
    (building,) = layout.buildings
    assert building.name == "Gedung Kantor Bersama A1" and len(building.floors) == 3
    for floor in building.floors:
        assert 3 <= len(floor.zones) <= 4
        assert len([d for z in floor.zones for d in z.desks]) == 24
        assert len([r for z in floor.zones for r in z.rooms]) == 2
    floor1 = [d for f, _, d in layout.desks() if f.level == 1]
    assert floor1[0].id == "L1-D01" and building.floors[0].node == "ikn-demo-l1"
    agencies = {z.reserved_for_agency for f in building.floors for z in f.zones}
    assert {"Kementerian PUPR", "Otorita IKN"} <= agencies
    assert {d.mode for _, _, d in layout.desks()} >= {"reservable", "drop_in", "unavailable"}


def test_duplicate_desk_id_names_its_path() -> None:
    data = _sample()
    desks = data["buildings"][0]["floors"][1]["zones"][0]["desks"]
    desks[3]["id"] = desks[0]["id"]
    with pytest.raises(LayoutError) as caught:
        parse_layout(data)
    assert (
        f"buildings[0].floors[1].zones[0].desks[3].id: duplicate desk id '{desks[0]['id']}'"
    ) in str(caught.value)


def test_schema_errors_are_all_listed_with_paths() -> None:
    data = copy.deepcopy(_sample())
    zone = data["buildings"][0]["floors"][0]["zones"][1]
    zone["desks"][0]["mode"] = "hot"
    zone["desks"][2]["features"] = ["monitor", "sofa"]
    zone["desks"][1]["colour"] = "red"
    data["site"]["timezone"] = "Mars/Olympus"
    with pytest.raises(LayoutError) as caught:
        parse_layout(data, "plan.yaml")
    problems = "\n".join(caught.value.problems)
    assert "buildings[0].floors[0].zones[1].desks[0].mode:" in problems
    assert "buildings[0].floors[0].zones[1].desks[2].features[1]:" in problems
    assert "buildings[0].floors[0].zones[1].desks[1].colour: Extra inputs" in problems
    assert "site.timezone:" in problems and "Mars/Olympus" in problems
    assert str(caught.value).startswith("plan.yaml: invalid layout")


def test_desk_without_node_and_bad_file(tmp_path: Path) -> None:
    data = _sample()
    del data["buildings"][0]["floors"][2]["node"]
    with pytest.raises(LayoutError, match=r"floors\[2\]\.zones\[0\]\.desks\[0\]\.node"):
        parse_layout(data)
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: [unclosed\n")
    with pytest.raises(LayoutError, match="not valid"):
        load_layout(bad)


async def test_apply_is_idempotent_and_keeps_live_state(database_url: str) -> None:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        layout = load_layout(SAMPLE_LAYOUT)
        await apply_layout(engine, layout)
        async with engine.begin() as conn:
            # As if the edge had reported a check-in and a unit serial meanwhile.
            await conn.execute(
                text("UPDATE desks SET state = 'occupied', unit = 'SN-1' WHERE id = 'L1-D01'")
            )
        await apply_layout(engine, layout)
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(Desk)) == 72
            assert await conn.scalar(select(func.count()).select_from(Room)) == 6
            row = (
                await conn.execute(
                    select(Desk.state, Desk.unit, Desk.node_id, Desk.features).where(
                        Desk.id == "L1-D01"
                    )
                )
            ).one()
        assert tuple(row) == ("occupied", "SN-1", "ikn-demo-l1", ["monitor", "standing"])
    finally:
        await engine.dispose()


async def test_unknown_assigned_person_names_file_and_desk_and_writes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    data = _sample()
    desk = data["buildings"][0]["floors"][0]["zones"][0]["desks"][1]
    desk.update(mode="assigned", assigned_person="nobody-123")
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(data))
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        with pytest.raises(LayoutError) as caught:
            await apply_layout(engine, load_layout(plan))
        message = str(caught.value)
        assert message.startswith(f"{plan}: invalid layout")
        assert (
            "buildings[0].floors[0].zones[0].desks[1].assigned_person: no person 'nobody-123'"
        ) in message
        # The reason, not a driver error with every parameter set.
        assert "INSERT" not in message and len(message.splitlines()) == 2
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(Desk)) == 0
    finally:
        await engine.dispose()
