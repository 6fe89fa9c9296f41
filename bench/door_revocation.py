"""Badge revocation -> the door node refuses the badge: p50/p99 (target p99 < 5 s).

Real Mosquitto, the cloud (uvicorn, SQLite, its default snapshot debounce) and an
EdgeAgent controlling two doors, each an OSDP reader simulator in secure channel
(tests/e2e/door_office.py). Per round: a fresh badge is issued to a person whose
group opens the lobby, and we wait until the node grants it; then the clock starts
just before `POST /badges/{id}/revoke` and stops when the node's own decision for
that badge at the lobby (the decision a card read gets, taken from the node's
snapshot) turns into a refusal, polled every 5 ms. Every fifth round a real card
read at the simulated reader confirms the refusal end to end (not timed).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_P99_S = 5.0
POLL_S = 0.005


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def _until(check: Any, within: float) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polling the node's decision: there is no event
            await asyncio.sleep(POLL_S)


async def _measure(rounds: int, tmp: Path) -> list[float]:
    from tests.e2e.door_office import LOBBY, door_office, set_up_rights

    seconds: list[float] = []
    async with door_office(tmp, f"sqlite+aiosqlite:///{tmp}/cloud.sqlite3", debounce_s=0.5) as o:
        await set_up_rights(o)
        for i in range(rounds):
            uid = f"04BE{i:08X}"
            r = await o.http.post(
                "/api/v1/badges", json={"kind": "nfc", "uid": uid, "person_id": "p-ayu"}
            )
            r.raise_for_status()
            badge_id = r.json()["id"]
            await _until(lambda u=uid: o.decide(LOBBY, u)[0], 30)
            t0 = time.perf_counter()
            r = await o.http.post(f"/api/v1/badges/{badge_id}/revoke")
            r.raise_for_status()
            await _until(lambda u=uid: not o.decide(LOBBY, u)[0], 30)
            seconds.append(time.perf_counter() - t0)
            if i % 5 == 0:
                entry = await o.tap(LOBBY, uid)
                if entry["granted"]:
                    raise RuntimeError(f"reader opened for revoked badge {uid}")
    return seconds


def run(rounds: int = 40) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ruang-bench-doors-") as tmp:
        seconds = asyncio.run(_measure(rounds, Path(tmp)))
    p99 = _percentile(seconds, 99)
    figures = {
        "rounds": rounds,
        "revocation_to_refusal_p50_s": round(statistics.median(seconds), 3),
        "revocation_to_refusal_p99_s": round(p99, 3),
        "revocation_to_refusal_max_s": round(max(seconds), 3),
        "revocation_to_refusal_p99_target": f"< {TARGET_P99_S} s",
        "verdict": "PASS" if p99 < TARGET_P99_S else "FAIL",
    }
    print(f"revocation -> refusal p50 {figures['revocation_to_refusal_p50_s']} s, "
          f"p99 {figures['revocation_to_refusal_p99_s']} s (target < {TARGET_P99_S} s): "
          f"{figures['verdict']}")  # fmt: skip
    return figures


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["verdict"] == "PASS" else 1)
