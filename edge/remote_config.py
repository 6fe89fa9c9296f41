"""Remote configuration: the cloud's `config` push, validated, persisted and rolled back.

The cloud publishes a node's desired device and timing settings, versioned and
retained, on `commands/config` (contract.ConfigPush). The node:

1. ignores a version not newer than the one it runs (the retained push comes
   back on every reconnect);
2. refuses settings that are not remotely settable (identity, broker, paths) and
   builds a whole new EdgeSettings from "current settings + pushed keys" so
   pydantic checks the result exactly as it checks the file; a refusal leaves
   the running config alone and is reported as ConfigStatus(applied=False);
3. persists the accepted push to `state_dir/remote-config.json` (atomically,
   keeping the previous version for rollback) *before* applying it, so a crash
   mid-apply comes back up on the new version, or on the old one if the new one
   cannot even be built;
4. applies it: desk units, health interval and away times in place; anything
   else (radars, GPS, doors, BLE, time zone) by a clean agent restart, exit code
   RESTART_EXIT_CODE, which systemd's `Restart=always` turns into a fresh start
   that loads the persisted config.

Pushed keys replace the file's value of the same key wholesale (a pushed
`desk_units` list is the complete list). RUANG_* environment variables still
win over both, as they win over the file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ruang import contract

from .settings import EdgeSettings, format_validation_error

log = logging.getLogger(__name__)

FILE_NAME = "remote-config.json"
# EX_TEMPFAIL: "try again"; systemd's Restart=always restarts on any exit, and a
# distinct code makes the restart easy to tell apart from a crash in the journal.
RESTART_EXIT_CODE = 75

# What the cloud may change. Applied without a restart:
HOT_KEYS = frozenset({"desk_units", "health_interval_s", "away_s", "away_warning_s"})
REMOTE_KEYS = contract.REMOTE_CONFIG_KEYS
# The rest (radars, GPS, doors, BLE, time zone) by restarting the agent: their
# drivers read the settings once, at construction.
RESTART_KEYS = REMOTE_KEYS - HOT_KEYS


class RestartRequested(Exception):
    """The agent must restart to apply a config; `ruang edge run` exits with RESTART_EXIT_CODE."""


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a push: `settings` is None when it is refused or ignored."""

    settings: EdgeSettings | None
    error: str | None = None
    ignored: bool = False
    restart: bool = False
    # Every remote key in force after this push (earlier pushes' keys included),
    # which is what gets persisted: a restart rebuilds from file + this alone.
    config: dict[str, Any] | None = None


def merge(base: EdgeSettings, config: dict[str, Any]) -> EdgeSettings:
    """The settings `config` asks for on top of `base`; raises ValueError with a clear reason."""
    refused = sorted(set(config) - REMOTE_KEYS)
    if refused:
        raise ValueError(
            f"not settable remotely: {', '.join(refused)} "
            f"(allowed: {', '.join(sorted(REMOTE_KEYS))})"
        )
    data = base.model_dump()
    data.update(config)
    try:
        return EdgeSettings(**data)
    except ValidationError as exc:
        raise ValueError(format_validation_error("pushed config", exc)) from None


def changed_keys(old: EdgeSettings, new: EdgeSettings) -> set[str]:
    before, after = old.model_dump(), new.model_dump()
    return {key for key in REMOTE_KEYS if before.get(key) != after.get(key)}


class RemoteConfigStore:
    """The persisted remote config of one node (current and previous version)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self.current: Version | None = None
        self.previous: Version | None = None
        # The newest version refused or rolled back, and why. Persisted, so a retained
        # push that broke the agent at start is not tried again on every reconnect.
        self.refused: tuple[int, str] | None = None
        # Whether the cloud has heard about `refused` (told once, not per restart).
        self.refused_reported = True
        self.load_error: str | None = None
        self._load()

    @property
    def version(self) -> int | None:
        return self.current.version if self.current else None

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
            self.current = _version(raw.get("current"))
            self.previous = _version(raw.get("previous"))
            refused = raw.get("refused")
            if refused is not None:
                self.refused = (int(refused["version"]), str(refused["error"]))
                self.refused_reported = bool(refused.get("reported", True))
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # A damaged file must not stop the node: run the file config and say why.
            self.load_error = f"cannot read {self.path}: {exc}"
            log.error("remote config ignored: %s", self.load_error)
            self.current = self.previous = None

    def _save(self) -> None:
        body = {
            "current": _dump(self.current),
            "previous": _dump(self.previous),
            "refused": None
            if self.refused is None
            else {
                "version": self.refused[0],
                "error": self.refused[1],
                "reported": self.refused_reported,
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            json.dump(body, fh, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        # rename is atomic: a power cut leaves the old file or the new one, never half.
        tmp.replace(self.path)

    def effective(self, file_settings: EdgeSettings) -> EdgeSettings:
        """The file config with the persisted remote config over it (the file alone if invalid)."""
        if self.current is None:
            return file_settings
        try:
            return merge(file_settings, self.current.config)
        except ValueError as exc:
            # The file may have changed under a persisted push; keep the node running.
            error = f"persisted config v{self.current.version} no longer valid: {exc}"
            log.error("%s", error)
            self.rollback(error)
            return self.effective(file_settings)

    def decide(self, push_version: int, config: dict[str, Any], running: EdgeSettings) -> Decision:
        """Validates a push against the running settings; does not change anything."""
        active = self.version or 0
        if push_version <= active or (self.refused and push_version == self.refused[0]):
            return Decision(None, ignored=True)
        try:
            new = merge(running, config)
        except ValueError as exc:
            return Decision(None, error=str(exc))
        cumulative = {**(self.current.config if self.current else {}), **config}
        # Keys the push omits keep their running value, so compare what actually changes.
        restart = bool(changed_keys(running, new) - HOT_KEYS)
        return Decision(new, restart=restart, config=cumulative)

    def refuse(self, version: int, error: str, *, reported: bool) -> None:
        self.refused, self.refused_reported = (version, error), reported
        self._save()

    def mark_reported(self) -> None:
        if not self.refused_reported:
            self.refused_reported = True
            self._save()

    def commit(self, version: int, config: dict[str, Any]) -> None:
        self.previous, self.current = self.current, Version(version, dict(config))
        self._save()

    def rollback(self, error: str, *, reported: bool = False) -> None:
        """Back to the previous version (or to the file config alone when there is none)."""
        if self.current is not None:
            self.refused, self.refused_reported = (self.current.version, error), reported
        self.current, self.previous = self.previous, None
        self._save()


def _version(raw: Any) -> Version | None:
    if raw is None:
        return None
    version = int(raw["version"])
    config = raw["config"]
    if version < 1 or not isinstance(config, dict):
        raise ValueError("malformed version entry")
    return Version(version, config)


def _dump(entry: Version | None) -> dict[str, Any] | None:
    return None if entry is None else {"version": entry.version, "config": entry.config}
