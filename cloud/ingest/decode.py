"""Decoding of received MQTT messages: contract validation with a per-topic cache.

Same checks as `contract.decode`, but parsing a topic costs more than validating
a payload, so the parsed topic and its model are cached. Any failure is
re-checked by `contract.decode` so the reason is the contract's own;
`reject_category` buckets those reasons for the counters.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ruang import contract

TOPIC_CACHE_MAX = 50_000


def reject_category(reason: str) -> str:
    """A short, stable bucket for a ContractError reason (for counters, not for people)."""
    if ": ts: " in reason:
        # A timestamp beyond the contract's bounds: the node's clock, like the window.
        return "clock_skew"
    if reason.startswith(("topic outside", "malformed", "invalid node id")):
        return "topic"
    if reason.startswith("unknown"):
        return "unknown_kind"
    if "does not match topic node" in reason:
        return "node_mismatch"
    if "Invalid JSON" in reason or "JSON input" in reason:
        return "bad_json"
    if reason.startswith("commands"):
        return "wrong_direction"
    return "schema"


class Decoder:
    """Validates (topic, payload) against the contract; refuses commands (cloud -> edge)."""

    def __init__(self) -> None:
        self._topics: dict[str, tuple[contract.ParsedTopic, type[BaseModel]]] = {}

    def decode(self, topic: str, payload: Any) -> tuple[contract.ParsedTopic, contract.Message]:
        entry = self._topics.get(topic)
        if entry is None:
            parsed = contract.parse_topic(topic)
            if parsed.channel is contract.Channel.COMMANDS:
                raise contract.ContractError("commands go cloud -> edge; not ingested")
            entry = (parsed, contract.model_for(parsed))
            if len(self._topics) >= TOPIC_CACHE_MAX:
                self._topics.clear()
            self._topics[topic] = entry
        parsed, model = entry
        try:
            message = model.model_validate_json(payload)
        except ValueError:
            message = None
        if message is None or message.node != parsed.node:  # type: ignore[attr-defined]
            contract.decode(topic, payload)  # raises with the contract's reason
            raise contract.ContractError("payload rejected")
        return parsed, message  # type: ignore[return-value]

    def node_of(self, topic: str) -> str | None:
        """The node of a topic already seen (a valid topic whose payload was refused)."""
        entry = self._topics.get(topic)
        return None if entry is None else entry[0].node
