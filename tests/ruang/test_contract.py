"""The MQTT contract: documented examples decode, bad messages are refused with a reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from ruang import contract

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt-contract.md"
EXAMPLE_RE = re.compile(r"```mqtt\ntopic: (\S+)\n(.+?)\n```", re.S)


def doc_examples() -> list[tuple[str, str]]:
    return EXAMPLE_RE.findall(DOC.read_text())


def test_doc_has_an_example_for_every_kind() -> None:
    topics = {topic.rsplit("/", 1)[-1] for topic, _ in doc_examples() if "/backlog/" not in topic}
    kinds = {"state", *contract.EVENT_KINDS, *contract.TELEMETRY_KINDS, *contract.COMMAND_KINDS}
    assert kinds <= topics


@pytest.mark.parametrize(("topic", "payload"), doc_examples())
def test_documented_example_decodes_and_reencodes_on_its_topic(topic: str, payload: str) -> None:
    parsed, message = contract.decode(topic, payload.encode())
    if parsed.channel is contract.Channel.BACKLOG:
        assert contract.backlog_topic(message.node, parsed.kind) == topic
    else:
        assert contract.topic_for(message) == topic
    again = contract.decode(topic, contract.encode(message))[1]
    assert again == message


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("other/v1/x", b"{}", "topic outside the contract"),
        ("ruang/v1/nodes/n1/events/teleport", b"{}", "unknown events kind"),
        ("ruang/v1/nodes/n1/events/checkin", b"{nope", "Invalid JSON"),
        (
            "ruang/v1/nodes/n1/events/checkin",
            b'{"v":2,"id":"abcdefgh","node":"n1","desk":"D1","badge":"04A1B2C3"}',
            "v:",
        ),
        (
            "ruang/v1/nodes/n1/events/checkin",
            b'{"v":1,"id":"abcdefgh","node":"n2","desk":"D1","badge":"04A1B2C3"}',
            "does not match",
        ),
        (
            "ruang/v1/nodes/n1/events/checkin",
            b'{"v":1,"id":"abcdefgh","node":"n1","desk":"D1","badge":"04A1B2"}',
            "badge",
        ),
        ("ruang/v1/nodes/n+/state", b"{}", "invalid node id"),
        ("ruang/v1/nodes/n1/state/extra", b"{}", "malformed state topic"),
        (
            "ruang/v1/nodes/n1/telemetry/presence",
            b'{"v":1,"id":"abcdefgh","node":"n1","desk":"D1 ; drop","present":true}',
            "desk",
        ),
    ],
)
def test_message_breaking_the_contract_is_refused_with_reason(
    topic: str, payload: bytes, reason: str
) -> None:
    with pytest.raises(contract.ContractError) as info:
        contract.decode(topic, payload)
    assert reason in info.value.reason


def test_every_message_gets_a_unique_id() -> None:
    ids = {contract.Presence(node="n1", desk="D1", present=True).id for _ in range(1000)}
    assert len(ids) == 1000


def test_events_are_qos1_and_telemetry_qos0() -> None:
    assert contract.qos_for(contract.CheckIn(node="n", desk="d", badge="04A1B2C3")) == 1
    assert contract.qos_for(contract.Presence(node="n", desk="d", present=False)) == 0
    assert contract.qos_for(contract.NodeState(node="n", online=True, bdseq=0)) == 1


def test_unknown_extra_fields_are_ignored_for_forward_compatibility() -> None:
    _, msg = contract.decode(
        "ruang/v1/nodes/n1/telemetry/presence",
        b'{"v":1,"id":"abcdefgh","node":"n1","desk":"D1","present":true,"future":42}',
    )
    assert isinstance(msg, contract.Presence)


def _checkin_json(**fields: object) -> bytes:
    import json

    base = {
        "v": 1,
        "id": "0123456789abcdef",
        "node": "n1",
        "ts": 1_795_000_000.0,
        "desk": "D1",
        "badge": "04A1B2C3",
    }
    return json.dumps(base | fields).encode()


def test_timestamps_beyond_what_sql_and_datetime_hold_are_refused() -> None:
    topic = contract.event_topic("n1", "checkin")
    for ts in (1e12, 1e300, -1):
        with pytest.raises(contract.ContractError, match="ts"):
            contract.decode(topic, _checkin_json(ts=ts))
    for token in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        payload = _checkin_json(ts=0).replace(b'"ts": 0', b'"ts": ' + token)
        with pytest.raises(contract.ContractError, match="ts"):
            contract.decode(topic, payload)
    contract.decode(topic, _checkin_json(ts=contract.MAX_TIMESTAMP))


def test_integers_strings_and_lists_are_bounded_to_what_the_columns_hold() -> None:
    health = contract.NodeHealth(
        node="n1", uptime_s=1, rss_bytes=1, rejected_frames=0, mqtt_reconnects=0, units_online=0
    )
    for field, value in (
        ("rss_bytes", 2**63),
        ("outbox_depth", 2**31),
        ("config_version", 2**31),
        ("alarms", ["a"] * 33),
        ("alarms", ["x" * 129]),
        ("cpu_pct", float("inf")),
    ):
        with pytest.raises(ValidationError):
            contract.NodeHealth.model_validate(health.model_dump() | {field: value})
    with pytest.raises(ValidationError):
        contract.NodeState(node="n1", online=True, bdseq=2**63)
    with pytest.raises(ValidationError):
        contract.NodeState(
            node="n1",
            online=True,
            bdseq=1,
            desks=tuple(contract.DeskInfo(desk=f"d{i}") for i in range(1025)),
        )
    with pytest.raises(ValidationError):
        contract.UnitStatus(node="n1", desk="D1", online=True, firmware="fw\x00")
    with pytest.raises(ValidationError):
        contract.ConfigPush(node="n1", version=1, config={f"k{i}": i for i in range(65)})
    # The largest values that fit still validate.
    contract.NodeState(node="n1", online=True, bdseq=2**63 - 1, outbox_depth=2**31 - 1)


def _legacy_canonical(body: contract.SnapshotBody) -> bytes:
    """The bytes an older cloud signed: the body's dump without the door-rights fields."""
    import json

    data = body.model_dump(mode="json", exclude={"doors"})
    for badge in data["badges"]:
        badge.pop("valid_from")
        badge.pop("doors")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_a_snapshot_without_door_rights_signs_the_same_bytes_as_before_the_extension() -> None:
    body = contract.SnapshotBody(
        version=5, issued_at=100.0, valid_until=200.0,
        badges=(contract.SnapshotBadge(badge="04A1B2C3", person="p-1", valid_until=150.0),),
    )  # fmt: skip
    assert contract.canonical_json(body) == _legacy_canonical(body)
    # An old body (no door fields at all) still parses, with empty rights.
    old = contract.SnapshotBody.model_validate_json(_legacy_canonical(body))
    assert old.doors == () and old.badges[0].doors == () and old.badges[0].valid_from is None


def test_door_rights_are_covered_by_the_signature_bytes() -> None:
    right = contract.SnapshotDoorRight(door="A1-LOBBY", windows=((100.0, 160.0),))
    body = contract.SnapshotBody(
        version=5, issued_at=100.0, valid_until=200.0,
        doors=(contract.SnapshotDoor(door="A1-LOBBY", anti_passback=True),),
        badges=(contract.SnapshotBadge(badge="04A1B2C3", person="p-1", doors=(right,)),),
    )  # fmt: skip
    signed = contract.canonical_json(body)
    assert b'"A1-LOBBY"' in signed and b"[100.0,160.0]" in signed
    assert signed != _legacy_canonical(body)


def test_a_door_window_must_be_two_timestamps() -> None:
    with pytest.raises(ValidationError):
        contract.SnapshotDoorRight(door="D1", windows=((1.0, 2.0, 3.0),))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        contract.SnapshotDoorRight(door="D1", windows=((-1.0, 2.0),))
