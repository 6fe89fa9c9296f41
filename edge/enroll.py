"""`ruang edge enroll`: turn a one-time token into this node's config, password and CA.

Run once on a fresh node by a technician. The token is spent by the cloud the
moment it answers, so everything that could make the local writes fail (an
existing config, an unwritable directory) is checked before asking. Written:

- the config YAML (node id, broker URL and username, CA path, the edge settings
  chosen with the token), validated as EdgeSettings before it is written;
- the env file with `RUANG_MQTT_PASSWORD=...`, mode 0600 (secrets stay out of the
  config, which technicians copy around);
- `state_dir/ca.pem`, the CA of the broker's TLS certificate, when the cloud has one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError

from edge.settings import EdgeSettings, format_validation_error

ENROL_PATH = "/api/v1/enroll"
PASSWORD_VAR = "RUANG_MQTT_PASSWORD"
TIMEOUT_S = 30.0


class EnrolError(RuntimeError):
    """Enrolment failed; the message is meant for the technician."""


@dataclass(frozen=True)
class EnrolResult:
    node_id: str
    mqtt_url: str
    config_path: Path
    env_path: Path
    ca_path: Path | None


def hardware_id() -> str | None:
    """The Raspberry Pi serial number, else the machine id; None when neither is readable."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Serial" and value.strip():
                return value.strip()
    with contextlib.suppress(OSError):
        machine_id = Path("/etc/machine-id").read_text().strip()
        if machine_id:
            return machine_id
    return None


def _write_private(path: Path, text: str, mode: int) -> None:
    """Atomic write whose temp file already has `mode`, so a secret is never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _env_text(env_path: Path, password: str) -> str:
    # Keep whatever else the technician put in the env file; replace only our line.
    kept: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        kept = [
            line
            for line in env_path.read_text().splitlines()
            if not line.startswith(f"{PASSWORD_VAR}=")
        ]
    return "\n".join([*kept, f"{PASSWORD_VAR}={password}"]) + "\n"


def _refusal(response: httpx.Response) -> EnrolError:
    try:
        problem = response.json()
        title, detail = problem.get("title"), problem.get("detail")
    except ValueError:
        title, detail = None, None
    reason = ": ".join(str(x) for x in (title, detail) if x) or response.reason_phrase
    if response.status_code in (401, 410):
        return EnrolError(
            f"the cloud refused the token ({reason}); "
            "ask an administrator for a new enrolment token"
        )
    return EnrolError(f"enrolment failed with HTTP {response.status_code}: {reason}")


def _check_writable(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnrolError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
        if not os.access(path.parent, os.W_OK):
            raise EnrolError(f"{path.parent} is not writable (run as root?)")


async def enroll(
    cloud_url: str,
    token: str,
    config_path: Path,
    env_path: Path,
    state_dir: Path,
    force: bool = False,
    *,
    hardware: str | None = None,
) -> EnrolResult:
    """Enrols this node with the cloud at `cloud_url` and writes its config; see the module doc."""
    if config_path.exists() and not force:
        raise EnrolError(
            f"{config_path} already exists; this node looks enrolled "
            "(use --force to replace its config)"
        )
    ca_path = state_dir / "ca.pem"
    _check_writable([config_path, env_path, ca_path])

    url = cloud_url.rstrip("/") + ENROL_PATH
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            response = await client.post(
                url, json={"token": token, "hardware_id": hardware or hardware_id()}
            )
    except httpx.HTTPError as exc:
        raise EnrolError(f"cannot reach the cloud at {cloud_url}: {exc}") from None
    if response.status_code != 200:
        raise _refusal(response)
    try:
        answer: dict[str, Any] = response.json()
        node_id, password = answer["node_id"], answer["mqtt_password"]
        mqtt_url = answer["mqtt_url"]
    except (ValueError, KeyError, TypeError) as exc:
        raise EnrolError(f"the cloud at {cloud_url} sent an unexpected answer: {exc}") from None

    ca_pem = answer.get("ca_cert_pem")
    # The cloud's edge settings first, then what enrolment decides, which must win.
    config: dict[str, Any] = dict(answer.get("config") or {})
    config.update(
        node_id=node_id,
        mqtt_url=mqtt_url,
        mqtt_username=answer.get("mqtt_username") or node_id,
        state_dir=str(state_dir),
    )
    if ca_pem:
        config["mqtt_ca_file"] = str(ca_path)
    try:
        EdgeSettings(**config)
    except ValidationError as exc:
        # The token is spent by now; say so, since the technician needs a new one.
        raise EnrolError(
            format_validation_error(
                "the cloud's edge config is invalid (the token is used up; fix the config "
                "and issue a new token)",
                exc,
            )
        ) from None

    if ca_pem:
        _write_private(ca_path, ca_pem, 0o644)
    _write_private(env_path, _env_text(env_path, password), 0o600)
    # Last: an existing config is what marks the node as enrolled.
    _write_private(config_path, yaml.safe_dump(config, sort_keys=False), 0o644)
    return EnrolResult(
        node_id=node_id,
        mqtt_url=mqtt_url,
        config_path=config_path,
        env_path=env_path,
        ca_path=ca_path if ca_pem else None,
    )
