"""Schemathesis against the real cloud: every documented operation, every check, no 500s.

The cloud runs under uvicorn on a free loopback port (its own event loop in a
thread, because Schemathesis drives Hypothesis synchronously) with a SQLite
database holding the sample building, and answers generated requests from an
admin and from nobody. Each operation is a test item of its own (per caller),
with every Schemathesis check on: server errors, status codes, content types,
headers and bodies against the document, schema-valid data accepted and
schema-invalid data refused, Allow on 405, auth actually enforced. The seed is
fixed (derandomised), so a failure found here is found again on re-run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, settings

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.people.auth import DEV_ALGORITHM
from cloud.settings import CloudSettings
from launch import devservers
from launch.webapp import create_app
from tests.cloud.conftest import unique


def _openapi() -> dict[str, Any]:
    """The document the server publishes at /openapi.json (settings do not change it)."""
    app = create_app(CloudSettings(database_url="sqlite+aiosqlite:///:memory:"))
    return app.openapi()


# Rules between fields that OpenAPI cannot state (an order of two parameters, the
# site's booking limits, a CSV's columns, remotely settable config keys): a request
# the schema allows may break them, and the 422 each of these operations documents
# says which. Everywhere else a schema-valid request answered 422 is a failure.
CROSS_FIELD_RULES = (
    r"^/api/v1/availability$",
    r"^/api/v1/analytics/",
    r"^/api/v1/bookings(/recurring|/\{booking_id\}/extend)?$",
    r"^/api/v1/people/import$",
    r"^/api/v1/nodes/\{node_id\}/config$",
    r"^/api/v1/webhooks$",
    r"^/api/v1/transport/alerts$",
    # A GTFS zip's files and references; a vehicle's kind rules, site and node; known stops.
    r"^/api/v1/transport/gtfs$",
    r"^/api/v1/transport/vehicles(/\{vehicle_id\})?$",
    r"^/api/v1/transport/sites/\{site\}/stops$",
)
_CROSS_FIELD_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
# SCIM (cloud/api/scim.py): a filter's or a PATCH path's grammar, the people and sites a
# body names, unique names and If-Match versions are beyond OpenAPI; SCIM refuses with 400
# (scimType), 409 or 412 as each operation documents. Selected by one name regex (an
# entry's include-method and include-path-regex each select on their own), and listed
# first: where several entries select an operation, the first one's statuses hold.
_SCIM_STATUSES = ["2xx", "400", "401", "403", "404", "409", "412"]
CONFIG = schemathesis.Config.from_dict(
    {
        "operations": [
            {
                "include-name-regex": r"^(GET|POST|PUT|PATCH|DELETE) /scim/v2/",
                "checks": {"positive_data_acceptance": {"expected-statuses": _SCIM_STATUSES}},
            },
            *(
                {
                    "include-path-regex": rule,
                    "include-method": method,
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": _CROSS_FIELD_STATUSES}
                    },
                }
                for rule in CROSS_FIELD_RULES
                for method in ("GET", "POST", "PUT", "PATCH")
            ),
        ],
    }
)
# A GTFS upload is a zip: generated bodies are sent as raw bytes, like octet-stream.
schemathesis.serializer.alias("application/zip", "application/octet-stream")
# Loaded at import so that each operation is a test item of its own. Streams never
# end by themselves (SSE); they are tested in tests/cloud/live/test_live.py.
as_admin = schemathesis.openapi.from_dict(_openapi(), config=CONFIG).exclude(path_regex=r"/stream$")
anonymous = schemathesis.openapi.from_dict(_openapi(), config=CONFIG).exclude(
    path_regex=r"/stream$"
)
# Schemathesis builds some cases while collecting, so the admin's token exists
# before the server: its signing key is made here and handed to the server's settings.
_DEV_KEY = ec.generate_private_key(ec.SECP256R1())
_ADMIN_TOKEN = jwt.encode(
    {
        "iss": CloudSettings.model_fields["auth_issuer"].default,
        "aud": CloudSettings.model_fields["auth_audience"].default,
        "sub": "fuzz-admin",
        "roles": ["admin"],
        "iat": int(time.time()),
        "exp": int(time.time()) + 3600,
    },
    _DEV_KEY,
    algorithm=DEV_ALGORITHM,
)


@as_admin.auth()
class AdminToken:
    """A valid admin bearer token, which Schemathesis knows it sends (and when it leaves it out)."""

    def get(self, case: schemathesis.Case, ctx: Any) -> str:
        return _ADMIN_TOKEN

    def set(self, case: schemathesis.Case, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


# Enough examples per operation to reach the boundaries of every parameter while
# keeping the whole module near a minute on two shared cores.
MAX_EXAMPLES = 12


class _CloudThread:
    """`launch.webapp.serve` in a private event loop on a thread, driven from sync code."""

    def __init__(self, cloud_settings: CloudSettings) -> None:
        self.settings = cloud_settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._task: asyncio.Future[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    def start(self) -> None:
        from launch.webapp import serve

        self._thread.start()
        ready = asyncio.Event()

        async def start() -> asyncio.Task[None]:
            task = asyncio.create_task(serve(self.settings, ready=ready))
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # re-raises the start-up failure
            return task

        self._task = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=60)

    def stop(self) -> None:
        async def stop() -> None:
            assert self._task is not None
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

        if self._task is not None:
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="module")
def running_cloud(
    mosquitto_server: devservers.Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_CloudThread]:
    var: Path = tmp_path_factory.mktemp("fuzz")
    (var / "dev-signing-key.pem").write_bytes(
        _DEV_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cloud_settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{var}/ruang.sqlite3",
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-cloud-fuzz"),
        telemetry_sqlite_path=var / "telemetry.sqlite3",
        auth_dev_key_path=var / "dev-signing-key.pem",
        snapshot_key_path=var / "snapshot-signing-key.pem",
        layout_file=SAMPLE_LAYOUT,
        http_port=devservers.free_port(),
        public_base_url="http://127.0.0.1",
    )
    cloud = _CloudThread(cloud_settings)
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()


def test_the_fuzz_is_not_folded_by_per_file_scheduling(request: pytest.FixtureRequest) -> None:
    # xdist's loadfile/loadscope/loadgroup key tests by node id, and Schemathesis gives
    # all operations of one test the same id: they would run one operation each.
    # A worker's own options say "no"; the main process's argv says how it schedules.
    worker = getattr(request.config, "workerinput", None)
    argv = " ".join(worker["mainargv"]) if worker else ""
    folding = [d for d in ("loadfile", "loadscope", "loadgroup") if d in argv]
    assert not folding, f"run this file without --dist {folding[0]}"


def test_every_schemathesis_check_is_on() -> None:
    from schemathesis.checks import CHECKS, load_all_checks

    load_all_checks()
    checks = CONFIG.projects.get_default().checks
    names = [check.__name__ for check in CHECKS.get_all()]
    assert len(names) >= 14
    assert [n for n in names if not checks.get_by_name(name=n).enabled] == []


def test_the_fuzzed_document_is_the_one_served(running_cloud: _CloudThread) -> None:
    served = httpx.get(f"{running_cloud.base_url}/openapi.json").json()
    assert served == _openapi()


# Hypothesis' settings for both runs: a fixed number of examples and a fixed seed.
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@as_admin.parametrize()
@FUZZ
def test_as_admin_operation_passes_every_check(
    case: schemathesis.Case, running_cloud: _CloudThread
) -> None:
    case.call_and_validate(base_url=running_cloud.base_url)


@anonymous.parametrize()
@FUZZ
def test_without_token_operation_passes_every_check(
    case: schemathesis.Case, running_cloud: _CloudThread
) -> None:
    case.call_and_validate(base_url=running_cloud.base_url)
