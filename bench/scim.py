"""SCIM provisioning: 10,000 users created by POST /scim/v2/Users (target >= 200 users/s),
then 1,000 of them deprovisioned by PATCH active=false (each revokes the person's badge);
and (`run_door`) SCIM deactivation -> a door node refuses the badge, p50/p99 (< 5 s).

Real Mosquitto and `ruang cloud serve` in its own process (SQLite, as the other suites),
one site; the load comes from a process of its own (`python -m bench.scim client`): a
provisioning client (role `scim`) sending `CONCURRENCY` requests at a time, as an identity
system's sync job does. Every create and deactivation is audited in its own
transaction, so the audit write is inside the measured path. At the end the server must
list exactly the users sent and every deactivated person's badge must be revoked.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import targets

USERS = 10_000
DEPROVISION = 1_000
CONCURRENCY = 8
TARGET_USERS_PER_S = 200.0
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def _user(i: int) -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": f"asn{i:05d}@bench.go.id",
        "externalId": f"idp-{i:05d}",
        "name": {"givenName": f"Pegawai {i}", "familyName": "Uji"},
        "emails": [{"value": f"asn{i:05d}@bench.go.id", "type": "work"}],
        ENTERPRISE: {"organization": "Kementerian Uji", "department": f"Unit {i % 40}"},
    }


async def _in_parallel(count: int, call: Any) -> tuple[float, list[float]]:
    """Runs call(i) for i < count, CONCURRENCY at a time: (wall seconds, per-call seconds)."""
    latencies: list[float] = []
    todo = iter(range(count))

    async def worker() -> None:
        for i in todo:
            t0 = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, latencies


async def _client(base: str, token: str, what: str, count: int) -> dict[str, Any]:
    """The identity system's sync job, in a process of its own (`python -m bench.scim
    client ...`): `create` POSTs users 0..count-1, `deactivate` PATCHes them inactive."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:

        async def create(i: int) -> None:
            r = await http.post("/scim/v2/Users", json=_user(i))
            if r.status_code != 201:
                raise RuntimeError(f"user {i}: {r.status_code} {r.text[:200]}")

        async def deactivate(i: int) -> None:
            off = {"op": "replace", "path": "active", "value": False}
            body = {"schemas": [PATCH], "Operations": [off]}
            r = await http.patch(f"/scim/v2/Users/asn{i:05d}@bench.go.id", json=body)
            if r.status_code != 200 or r.json()["active"] is not False:
                raise RuntimeError(f"deactivating {i}: {r.status_code} {r.text[:200]}")

        seconds, latencies = await _in_parallel(count, create if what == "create" else deactivate)
    return {"seconds": seconds, "latencies": latencies}


def _run_client(base: str, token: str, what: str, count: int) -> dict[str, Any]:
    """Starts the load generator as its own process and reads its JSON answer."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.scim", "client", base, token, what, str(count)],
        check=True, capture_output=True, text=True, timeout=3600,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


async def _measure(users: int, tmp: Path) -> dict[str, Any]:
    import httpx

    from bench.bookings import _cloud
    from cloud.settings import CloudSettings
    from launch import devservers
    from tests.cloud.scim.helpers import add_sites
    from tests.helpers import auth_headers

    broker = devservers.Mosquitto(port=devservers.free_port(), workdir=tmp / "broker")
    broker.workdir.mkdir()
    broker.start()
    database_url = f"sqlite+aiosqlite:///{tmp}/cloud.sqlite3"
    try:
        # `ruang cloud serve` in its own process, as users run it; the sync job in another.
        with _cloud(database_url, broker.url, tmp) as cloud:
            await add_sites(database_url, "s-bench")
            keys = CloudSettings(auth_dev_key_path=tmp / "dev-key.pem")
            scim = auth_headers(keys, "idp-bench", ("scim",), ("s-bench",))
            scim_token = scim["Authorization"].removeprefix("Bearer ")
            created = await asyncio.to_thread(_run_client, cloud.url, scim_token, "create", users)
            admin_headers = {"Authorization": f"Bearer {cloud.token}"}
            async with (
                httpx.AsyncClient(base_url=cloud.url, headers=scim, timeout=60) as http,
                httpx.AsyncClient(base_url=cloud.url, headers=admin_headers, timeout=60) as admin,
            ):
                listed = (await http.get("/scim/v2/Users", params={"count": 0})).json()
                if listed["totalResults"] != users:
                    raise RuntimeError(f"{listed['totalResults']} users listed, {users} sent")
                deprovision = min(DEPROVISION, users)
                for i in range(deprovision):
                    badge = {
                        "kind": "nfc",
                        "uid": f"04BE{i:08X}",
                        "person_id": f"asn{i:05d}@bench.go.id",
                    }
                    r = await admin.post("/api/v1/badges", json=badge)
                    r.raise_for_status()
                off = await asyncio.to_thread(
                    _run_client, cloud.url, scim_token, "deactivate", deprovision
                )
                active = (await admin.get("/api/v1/badges")).json()
                if any(b["status"] == "active" for b in active):
                    raise RuntimeError("a deactivated person still holds an active badge")
    finally:
        broker.stop()
    create_s, create_lat = created["seconds"], created["latencies"]
    off_s, off_lat = off["seconds"], off["latencies"]
    return {
        "users": users,
        "concurrency": CONCURRENCY,
        "provision_s": round(create_s, 2),
        "provision_users_per_s": round(users / create_s, 1),
        "provision_p50_ms": round(statistics.median(create_lat) * 1000, 1),
        "provision_p99_ms": round(_percentile(create_lat, 99) * 1000, 1),
        "deprovisioned": deprovision,
        "deprovision_users_per_s": round(deprovision / off_s, 1),
        "deprovision_p99_ms": round(_percentile(off_lat, 99) * 1000, 1),
    }


TARGET_DOOR_P99_S = 5.0


async def _door_rounds(rounds: int, tmp: Path) -> list[float]:
    """Per round: p-ayu is reactivated and handed a fresh badge, the door node grants it;
    the clock starts before PATCH active=false and stops when the node's own decision
    (from its snapshot) for that badge at the lobby is a refusal, polled every 5 ms."""
    from tests.e2e.door_office import LOBBY, door_office, set_up_rights

    async def until(check: Any) -> None:
        async with asyncio.timeout(30):
            while not check():  # noqa: ASYNC110 - the node's decision has no event to wait on
                await asyncio.sleep(0.005)

    def active(value: bool) -> dict[str, Any]:
        return {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active",
                                                    "value": value}]}  # fmt: skip

    seconds: list[float] = []
    async with door_office(tmp, f"sqlite+aiosqlite:///{tmp}/cloud.sqlite3", debounce_s=0.5) as o:
        await set_up_rights(o)
        for i in range(rounds):
            (await o.http.patch("/scim/v2/Users/p-ayu", json=active(True))).raise_for_status()
            uid = f"04CF{i:08X}"
            r = await o.http.post(
                "/api/v1/badges", json={"kind": "nfc", "uid": uid, "person_id": "p-ayu"}
            )
            r.raise_for_status()
            await until(lambda u=uid: o.decide(LOBBY, u)[0])
            t0 = time.perf_counter()
            (await o.http.patch("/scim/v2/Users/p-ayu", json=active(False))).raise_for_status()
            await until(lambda u=uid: not o.decide(LOBBY, u)[0])
            seconds.append(time.perf_counter() - t0)
    return seconds


def run_door(rounds: int = 30) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ruang-bench-scim-door-") as tmp:
        seconds = asyncio.run(_door_rounds(rounds, Path(tmp)))
    figures: dict[str, Any] = {
        "rounds": rounds,
        "deactivation_to_refusal_p50_s": round(statistics.median(seconds), 3),
        "deactivation_to_refusal_p99_s": round(_percentile(seconds, 99), 3),
    }
    targets.check(figures, "deactivation_to_refusal_p99_s", "<", TARGET_DOOR_P99_S, " s")
    return figures


def run(users: int = USERS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ruang-bench-scim-") as tmp:
        figures = asyncio.run(_measure(users, Path(tmp)))
    targets.check(figures, "provision_users_per_s", ">=", TARGET_USERS_PER_S, " users/s")
    print(f"SCIM: {users} users provisioned in {figures['provision_s']} s = "
          f"{figures['provision_users_per_s']} users/s (target >= {TARGET_USERS_PER_S:g}): "
          f"{figures['provision_users_per_s_verdict']}")  # fmt: skip
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        _, _, base, token, what, count = sys.argv
        print(json.dumps(asyncio.run(_client(base, token, what, int(count)))))
        sys.exit(0)
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else USERS)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["provision_users_per_s_verdict"] == "PASS" else 1)
