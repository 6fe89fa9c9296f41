"""Edge config file: typed, validated with clear errors, overridable by RUANG_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.settings import ConfigError, EdgeSettings, load_edge_settings

GOOD = """
node_id: ikn-a1-l1
mqtt_url: mqtt://127.0.0.1:1883
desk_units:
  - {desk: L1-D01, port: /dev/ttyUSB0}
  - {desk: L1-D02, port: "socket://127.0.0.1:7001", baudrate: 57600}
"""


def test_valid_config_file_loads_typed_settings(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(GOOD)
    s = load_edge_settings(path)
    assert s.node_id == "ikn-a1-l1"
    assert [u.desk for u in s.desk_units] == ["L1-D01", "L1-D02"]
    assert s.desk_units[1].baudrate == 57600


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("RUANG_MQTT_URL", "mqtt://10.0.0.5:1884")
    assert load_edge_settings(path).mqtt_url == "mqtt://10.0.0.5:1884"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("node_id: 'bad id!'\n", "node_id"),
        ("node_id: n1\nmqtt_url: http://x\n", "mqtt_url"),
        ("node_id: n1\ndesk_units: [{desk: D1}]\n", "desk_units.0.port"),
        ("node_id: n1\ndesk_units: [{desk: D1, port: a}, {desk: D1, port: b}]\n", "listed twice"),
        ("node_id: n1\nbogus: 1\n", "bogus"),
        ("- just\n- a list\n", "mapping"),
        ("node_id: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_config_is_refused_with_where_and_why(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_edge_settings(path)
    assert expected in str(info.value)


def test_missing_config_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_edge_settings(tmp_path / "nope.yaml")


def test_a_vehicle_node_names_its_vehicle_and_door_readers_and_refuses_duplicates() -> None:
    from edge.vehicle_config import VehicleConfig

    s = EdgeSettings(
        node_id="shuttle-07",
        vehicle={
            "vehicle": "shuttle-07",
            "readers": [{"id": "door-1", "port": "socket://127.0.0.1:7000"}],
        },
    )  # type: ignore[arg-type]
    assert s.vehicle is not None and s.vehicle.kind == "shuttle"
    assert s.vehicle.readers[0].port == "socket://127.0.0.1:7000"
    with pytest.raises(ValueError, match="unique"):
        VehicleConfig(
            vehicle="v",
            readers=[{"id": "d", "port": "/dev/a"}, {"id": "d", "port": "/dev/b"}],  # type: ignore[list-item]
        )
    with pytest.raises(ValueError):
        VehicleConfig(vehicle="bad id/with slash")
