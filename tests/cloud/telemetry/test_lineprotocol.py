"""Line-protocol formatting of the device telemetry kinds."""

from __future__ import annotations

from cloud.privacy.pseudonyms import Pseudonyms
from cloud.telemetry import lineprotocol
from ruang import contract

PSEUDONYMS = Pseudonyms(b"0123456789abcdef0123456789abcdef", "k1")
pseudonym = PSEUDONYMS.badge


def test_position_line_carries_vehicle_tag_and_fix_fields() -> None:
    msg = contract.Position(
        node="shuttle-07",
        vehicle="shuttle-07",
        lat=-0.97412,
        lon=116.70385,
        speed_kmh=23.4,
        heading_deg=87.5,
        fix_quality=1,
        satellites=9,
        hdop=0.9,
        ts=1795000500.0,
    )
    line = lineprotocol.for_telemetry(msg, pseudonym)
    assert line == (
        "position,node=shuttle-07,vehicle=shuttle-07 lat=-0.97412,lon=116.70385,speed_kmh=23.4,"
        "fix_quality=1i,heading_deg=87.5,satellites=9i,hdop=0.9 1795000500000000000"
    )


def test_device_health_line_has_kind_and_optional_battery() -> None:
    msg = contract.DeviceHealth(
        node="n1", device="radar-1", kind="radar", online=True, battery_pct=80, ts=1.0
    )
    assert lineprotocol.for_telemetry(msg, pseudonym) == (
        "device_health,node=n1,device=radar-1,kind=radar "
        "online=1i,rejected_frames=0i,battery_pct=80i 1000000000"
    )


def test_a_ble_badge_reports_health_under_its_pseudonym_not_its_id() -> None:
    msg = contract.DeviceHealth(
        node="n1", device="badge-1", kind="ble_badge", online=True, battery_pct=80, ts=1.0
    )
    line = lineprotocol.for_telemetry(msg, pseudonym)
    assert line is not None and "badge-1" not in line
    # The same pseudonym as the badge's presence lines (its ref is `ble:<device>`).
    assert f"device={pseudonym('ble:badge-1')},kind=ble_badge " in line


def test_badge_presence_keeps_badge_out_of_the_tags() -> None:
    msg = contract.BadgePresence(
        node="n1",
        badge="ble:badge-9",
        zone="L1-Z1",
        desk="L1-D01",
        present=True,
        confidence=0.5,
        ts=2.0,
    )
    line = lineprotocol.for_telemetry(msg, pseudonym)
    assert line is not None
    tags, fields, _ = line.split(" ")
    assert "badge" not in tags.split(",", 1)[1]
    assert f'badge="{pseudonym("ble:badge-9")}"' in fields and "badge-9" not in line


def test_presence_line_is_tagged_with_its_source() -> None:
    msg = contract.Presence(node="n1", desk="D1", present=True, source="radar", ts=3.0)
    assert (
        lineprotocol.for_telemetry(msg, pseudonym)
        == "presence,node=n1,desk=D1,source=radar present=1i 3000000000"
    )
