"""Process roles: what one cloud process runs, and the rules that keep several apart.

- `all`: everything in one process (the default; `make demo`, SQLite allowed).
- `api`: the HTTP API and dashboards; a publish-only MQTT session for commands.
- `ingest`: one ingestion worker on MQTT shared subscriptions.
- `jobs`: a candidate for leading the background jobs (cloud/jobs/leader.py).

SQLite has one writer, so any role but `all` needs PostgreSQL; `check_role`
refuses the rest before anything starts. Every process of a role has a worker
slot (`RUANG_WORKER_ID`, `--worker`): it names the process to the broker and to
PostgreSQL, so a restarted ingest worker reclaims its persistent MQTT session
(and the QoS 1 messages queued in it) instead of leaving an orphan behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cloud.db.engine import is_sqlite
from cloud.settings import CloudSettings
from ruang import contract

Role = Literal["all", "api", "ingest", "jobs"]
ROLES: tuple[Role, ...] = ("all", "api", "ingest", "jobs")
# The shared-subscription group of the ingest workers: the broker hands each message
# of a topic filter to one member of the group.
SHARE_GROUP = "ruang-ingest"


class RoleRefused(ValueError):
    """The settings do not allow this role (a second writer on SQLite)."""


def check_role(settings: CloudSettings) -> None:
    """Raises RoleRefused, with the reason and the way out, if the role cannot run here."""
    if settings.role != "all" and is_sqlite(settings.database_url):
        raise RoleRefused(
            f"role {settings.role!r} needs PostgreSQL: SQLite has a single writer, so the "
            "cloud runs on it only as one process (role 'all'). Set RUANG_DATABASE_URL to "
            "a postgresql+asyncpg:// URL, or run with --role all."
        )


def process_name(settings: CloudSettings) -> str:
    """This process's name for the broker and PostgreSQL: `<client id>-<role>-<worker>`.

    `all` keeps the configured client id unchanged, as before roles existed.
    """
    if settings.role == "all":
        return settings.mqtt_client_id
    return f"{settings.mqtt_client_id}-{settings.role}-{settings.worker_id}"


def ingest_subscriptions(settings: CloudSettings) -> tuple[tuple[str, int], ...]:
    """The cloud's topic filters: plain for `all`, in the shared group for `ingest`.

    Plain for `ingest` too on a broker without shared subscriptions
    (`mqtt_shared_subscriptions` false): that worker then takes the whole stream.
    """
    if settings.role == "all" or not settings.mqtt_shared_subscriptions:
        return contract.CLOUD_SUBSCRIPTIONS
    return tuple(
        (f"$share/{SHARE_GROUP}/{topic}", qos) for topic, qos in contract.CLOUD_SUBSCRIPTIONS
    )


@dataclass(frozen=True)
class Runs:
    """The parts a role runs in its process."""

    http_api: bool  # the full API and the dashboards (else health and /role only)
    ingestion: bool
    jobs: bool
    elected: bool  # jobs only while leading (cloud/jobs/leader.py)


RUNS: dict[Role, Runs] = {
    "all": Runs(http_api=True, ingestion=True, jobs=True, elected=False),
    "api": Runs(http_api=True, ingestion=False, jobs=False, elected=False),
    "ingest": Runs(http_api=False, ingestion=True, jobs=False, elected=False),
    "jobs": Runs(http_api=False, ingestion=False, jobs=True, elected=True),
}
