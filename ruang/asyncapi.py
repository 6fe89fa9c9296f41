"""An AsyncAPI 3.0 description of the edge<->cloud MQTT contract, generated from ruang/contract.py.

Every topic of the contract is a channel (one per message kind: state, events/{kind},
telemetry/{kind}, backlog/{kind} for every event and telemetry kind, commands/{kind}),
every kind a message whose payload schema is the contract model's JSON Schema, and
every channel has one operation seen from the cloud: it receives state, events,
telemetry and backlog and sends commands (an edge node does the opposite, on its own
node id only). QoS and retain flags are MQTT operation bindings.

`ruang contract asyncapi` prints it; docs/asyncapi.yaml is the committed copy, kept
equal to a fresh generation by tests/ruang/test_asyncapi.py.
"""

from __future__ import annotations

import inspect
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ruang import contract

ASYNCAPI_VERSION = "3.0.0"
MQTT_BINDING_VERSION = "0.2.0"
SCHEMA_REF = "#/components/schemas/{model}"
# Commands the cloud publishes retained (cloud/fleet/snapshots.py, cloud/fleet/node_config.py):
# a node that connects gets the latest at once.
RETAINED_COMMANDS = frozenset({"snapshot", "config"})


def kinds() -> list[tuple[contract.Channel, str, type[BaseModel]]]:
    """Every (channel, kind, model) of the contract; kind "" is the state topic."""
    out: list[tuple[contract.Channel, str, type[BaseModel]]] = [
        (contract.Channel.STATE, "", contract.NodeState)
    ]
    for channel, table in (
        (contract.Channel.EVENTS, contract.EVENT_KINDS),
        (contract.Channel.TELEMETRY, contract.TELEMETRY_KINDS),
        (contract.Channel.BACKLOG, {**contract.EVENT_KINDS, **contract.TELEMETRY_KINDS}),
        (contract.Channel.COMMANDS, contract.COMMAND_KINDS),
    ):
        out.extend((channel, kind, model) for kind, model in table.items())
    return out


def _address(channel: contract.Channel, kind: str) -> str:
    base = f"{contract.TOPIC_ROOT}/nodes/{{node}}/{channel.value}"
    return f"{base}/{kind}" if kind else base


def _qos(channel: contract.Channel, kind: str) -> int:
    if channel is contract.Channel.COMMANDS:
        return contract.EVENT_ACK_QOS if kind == "event_ack" else contract.COMMAND_QOS
    return {
        contract.Channel.STATE: contract.STATE_QOS,
        contract.Channel.EVENTS: contract.EVENT_QOS,
        contract.Channel.TELEMETRY: contract.TELEMETRY_QOS,
        contract.Channel.BACKLOG: contract.BACKLOG_QOS,
    }[channel]


def _summary(model: type[BaseModel]) -> str:
    doc = inspect.getdoc(model) or model.__name__
    return " ".join(doc.split("\n\n", 1)[0].split())


def _draft07(node: Any) -> Any:
    """Pydantic writes JSON Schema 2020-12; AsyncAPI's schema format is a draft-07 superset,
    so fixed-length arrays go from `prefixItems` to draft-07's `items` list (their length is
    already bounded by minItems/maxItems)."""
    if isinstance(node, list):
        return [_draft07(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _draft07(value) for key, value in node.items()}
    if "prefixItems" in out:
        out["items"] = out.pop("prefixItems")
    return out


def _schemas() -> dict[str, Any]:
    models = list(dict.fromkeys(model for _, _, model in kinds()))
    _, top = models_json_schema(
        [(model, "validation") for model in models], ref_template=SCHEMA_REF
    )
    schemas = _draft07(top.get("$defs", {}))
    return {name: schemas[name] for name in sorted(schemas)}


def _channel_id(channel: contract.Channel, kind: str) -> str:
    return f"{channel.value}-{kind}" if kind else channel.value


def document() -> dict[str, Any]:
    """The AsyncAPI document as plain data (ready for YAML or JSON)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel, kind, model in kinds():
        name = kind or "state"
        messages.setdefault(name, {
            "name": name,
            "title": model.__name__,
            "summary": _summary(model),
            "contentType": "application/json",
            "payload": {"$ref": SCHEMA_REF.format(model=model.__name__)},
        })  # fmt: skip
        cid = _channel_id(channel, kind)
        channels[cid] = {
            "address": _address(channel, kind),
            "title": f"{channel.value}/{kind}" if kind else "state",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "parameters": {"node": {"$ref": "#/components/parameters/node"}},
        }
        receives = channel is not contract.Channel.COMMANDS
        retained = channel is contract.Channel.STATE or (
            channel is contract.Channel.COMMANDS and kind in RETAINED_COMMANDS
        )
        operations[f"{'receive' if receives else 'send'}-{cid}"] = {
            "action": "receive" if receives else "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{name}"}],
            "bindings": {
                "mqtt": {
                    "qos": _qos(channel, kind),
                    "retain": retained,
                    "bindingVersion": MQTT_BINDING_VERSION,
                }
            },
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Ruang edge<->cloud MQTT contract",
            "version": f"{contract.TOPIC_ROOT} schema {contract.SCHEMA_VERSION}",
            "description": (
                "Generated from ruang/contract.py by `ruang contract asyncapi`; "
                "docs/mqtt-contract.md explains it for people. Operations are the cloud's: "
                "it receives state, events, telemetry and backlog, and sends commands; an "
                "edge node does the opposite, on its own node id only (the broker's ACL)."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "{host}:{port}",
                "protocol": "mqtt",
                "protocolVersion": "3.1.1",
                "description": "The site's MQTT broker (Mosquitto); TLS on 8883 in production.",
                "variables": {
                    "host": {"default": "localhost"},
                    "port": {"default": "1883", "enum": ["1883", "8883"]},
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": _schemas(),
            "messages": messages,
            "parameters": {
                "node": {
                    "description": (
                        f"The edge node's id, matching {contract.ID_PATTERN} "
                        "(and the payload's `node`)."
                    )
                }
            },
        },
    }


def render_yaml() -> str:
    """The document as YAML, in a stable order (the committed docs/asyncapi.yaml)."""
    header = "# Generated by `ruang contract asyncapi` from ruang/contract.py: do not edit.\n"
    body = yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)
    return header + body
