"""The AsyncAPI description of the MQTT contract: docs/asyncapi.yaml is what the generator
writes today, it is a valid AsyncAPI 3.0 document (pydantic-asyncapi), every topic and
kind of the contract is in it, and its payload schemas accept the documented examples
and refuse what the contract refuses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pydantic_asyncapi
import pytest
import yaml

from launch.cli import main
from ruang import asyncapi, contract
from tests.ruang.test_contract import doc_examples

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    return loaded


def test_committed_file_equals_a_fresh_generation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = asyncapi.render_yaml()
    assert COMMITTED.read_text(encoding="utf-8") == fresh, (
        "docs/asyncapi.yaml is stale: run `ruang contract asyncapi -o docs/asyncapi.yaml`"
    )
    # The CLI writes the same, to a file and to stdout.
    assert main(["contract", "asyncapi", "-o", str(tmp_path / "a.yaml")]) == 0
    assert (tmp_path / "a.yaml").read_text(encoding="utf-8") == fresh
    assert main(["contract", "asyncapi"]) == 0
    assert capsys.readouterr().out == fresh


def test_is_a_valid_asyncapi_3_document(document: dict[str, Any]) -> None:
    parsed = pydantic_asyncapi.AsyncAPI.model_validate(document)
    assert parsed.root.asyncapi == "3.0.0"
    # The model is not lenient about what matters: an operation must say send or receive.
    broken = json.loads(json.dumps(document))
    broken["operations"]["receive-events-checkin"]["action"] = "publish"
    with pytest.raises(ValueError):
        pydantic_asyncapi.AsyncAPI.model_validate(broken)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = _refs(document)
    assert len(refs) > 100
    for ref in refs:
        _resolve(document, ref)


def _channels_by_address(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {channel["address"]: channel for channel in document["channels"].values()}


def test_every_topic_and_kind_of_the_contract_is_a_channel(document: dict[str, Any]) -> None:
    channels = _channels_by_address(document)
    node = "{node}"

    def topic(make: Any, kind: str) -> str:
        return str(make("n", kind)).replace("/nodes/n/", f"/nodes/{node}/")

    expected: dict[str, tuple[type[Any], int, bool]] = {
        contract.state_topic("n").replace("/nodes/n/", f"/nodes/{node}/"): (
            contract.NodeState, contract.STATE_QOS, True,
        ),
    }  # fmt: skip
    for kind, model in contract.EVENT_KINDS.items():
        expected[topic(contract.event_topic, kind)] = (model, contract.EVENT_QOS, False)
        expected[topic(contract.backlog_topic, kind)] = (model, contract.BACKLOG_QOS, False)
    for kind, model in contract.TELEMETRY_KINDS.items():
        expected[topic(contract.telemetry_topic, kind)] = (model, contract.TELEMETRY_QOS, False)
        expected[topic(contract.backlog_topic, kind)] = (model, contract.BACKLOG_QOS, False)
    for kind, model in contract.COMMAND_KINDS.items():
        qos = contract.EVENT_ACK_QOS if kind == "event_ack" else contract.COMMAND_QOS
        expected[topic(contract.command_topic, kind)] = (model, qos, kind in {"snapshot", "config"})
    assert set(channels) == set(expected)

    operations = {op["channel"]["$ref"]: op for op in document["operations"].values()}
    for address, (model, qos, retained) in expected.items():
        channel = channels[address]
        (message_ref,) = (m["$ref"] for m in channel["messages"].values())
        message = _resolve(document, message_ref)
        assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        cid = next(k for k, c in document["channels"].items() if c is channel)
        operation = operations[f"#/channels/{cid}"]
        sent_by_cloud = "/commands/" in address
        assert operation["action"] == ("send" if sent_by_cloud else "receive")
        assert operation["bindings"]["mqtt"]["qos"] == qos
        assert operation["bindings"]["mqtt"]["retain"] is retained
    kinds = {"state", *contract.EVENT_KINDS, *contract.TELEMETRY_KINDS, *contract.COMMAND_KINDS}
    assert set(document["components"]["messages"]) == kinds


def _validator(document: dict[str, Any], address: str) -> jsonschema.Draft7Validator:
    channel = _channels_by_address(document)[address]
    (message_ref,) = (m["$ref"] for m in channel["messages"].values())
    payload = _resolve(document, message_ref)["payload"]
    # The payload's refs point into the document's components: validate against a root that
    # holds them (AsyncAPI's schema format is a superset of JSON Schema draft 07).
    root = {**payload, "components": document["components"]}
    jsonschema.Draft7Validator.check_schema(root)
    return jsonschema.Draft7Validator(root)


def _address(topic: str) -> str:
    return re.sub(r"^ruang/v1/nodes/[^/]+/", "ruang/v1/nodes/{node}/", topic)


@pytest.mark.parametrize(("topic", "payload"), doc_examples())
def test_documented_examples_match_their_channels_payload_schema(
    document: dict[str, Any], topic: str, payload: str
) -> None:
    errors = list(_validator(document, _address(topic)).iter_errors(json.loads(payload)))
    assert errors == []


def test_payload_schemas_refuse_what_the_contract_refuses(document: dict[str, Any]) -> None:
    validator = _validator(document, "ruang/v1/nodes/{node}/events/checkin")
    good = json.loads(contract.encode(contract.CheckIn(node="n-1", desk="D-1", badge="04A1B2C3")))
    assert validator.is_valid(good)
    for field, bad in (("desk", "a/b"), ("badge", "zz"), ("v", 2), ("ts", -1)):
        assert not validator.is_valid({**good, field: bad}), field
        with pytest.raises(ValueError):
            contract.decode(
                contract.event_topic("n-1", "checkin"), json.dumps({**good, field: bad})
            )
    assert not validator.is_valid({k: v for k, v in good.items() if k != "node"})
