"""A node config written by hand (JSON or YAML) checked before it is pushed, with line numbers.

The admin console's editor sends the text here; what comes back is either the parsed
config (then `PUT /nodes/{id}/config` pushes it) or every problem found, each with its
line where the parser or the key tells one. The node still validates what it receives
and answers with `config_status`; this catches the mistakes a person makes while typing.
"""

from __future__ import annotations

import json
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.admin.schemas import ConfigProblem
from cloud.fleet import node_config
from ruang import contract

LIST_KEYS = ("desk_units", "radars", "gps", "ble", "doors")
SECONDS_KEYS = ("health_interval_s", "away_s", "away_warning_s")


def parse(text: str, fmt: str) -> tuple[Any, list[ConfigProblem]]:
    """The document, or the parser's complaint with its line."""
    if fmt == "json":
        try:
            return json.loads(text), []
        except json.JSONDecodeError as exc:
            return None, [ConfigProblem(line=exc.lineno, message=exc.msg)]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [ConfigProblem(line=line, message=str(problem))]


def _line_of(text: str, key: str) -> int | None:
    # The first line naming the key at the top level (JSON `"key":`, YAML `key:`).
    pattern = re.compile(rf'^\s*"?{re.escape(key)}"?\s*:', re.MULTILINE)
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else None


def _value_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key in LIST_KEYS:
        if key in config and not isinstance(config[key], list):
            out.append((key, f"{key} must be a list"))
    for key in SECONDS_KEYS:
        value = config.get(key)
        if key in config and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            out.append((key, f"{key} must be a positive number of seconds"))
    if "building_tz" in config:
        try:
            ZoneInfo(str(config["building_tz"]))
        except (ZoneInfoNotFoundError, ValueError):
            out.append(("building_tz", f"unknown time zone {config['building_tz']!r}"))
    return out


async def check(
    conn: AsyncConnection, node: str, text: str, fmt: str
) -> tuple[dict[str, Any] | None, list[ConfigProblem]]:
    """(config, []) when `text` may be pushed to `node`, else (None, every problem)."""
    document, problems = parse(text, fmt)
    if problems:
        return None, problems
    if not isinstance(document, dict):
        return None, [ConfigProblem(line=1, message="the config must be a mapping of settings")]
    config: dict[str, Any] = {str(k): v for k, v in document.items()}
    for key in sorted(set(config) - contract.REMOTE_CONFIG_KEYS):
        problems.append(
            ConfigProblem(
                line=_line_of(text, key),
                message=f"{key} cannot be set remotely; allowed: "
                + ", ".join(sorted(contract.REMOTE_CONFIG_KEYS)),
            )
        )
    for key, message in _value_problems(config):
        problems.append(ConfigProblem(line=_line_of(text, key), message=message))
    if not problems:
        try:
            await node_config.check_vehicles(conn, node, config)
            contract.ConfigPush(node=node, version=1, config=config)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            problems.append(ConfigProblem(line=_line_of(text, "gps"), message=str(exc)))
    return (None, problems) if problems else (config, [])
