"""Snapshot key rotation: nodes trusting old and new keys take either, a node trusting only the
new one refuses the old, counted by reason and raised as a health alarm (docs/operations.md)."""

from __future__ import annotations

import time
from pathlib import Path

import aiomqtt
import pytest

from cloud.fleet.snapshots import SnapshotSigner
from cloud.keys import generate_key_set
from cloud.settings import CloudSettings
from edge.agent import EdgeAgent
from edge.doctor import check_snapshot
from edge.settings import EdgeSettings
from edge.snapshot import SnapshotError, SnapshotStore, load_trusted_keys
from launch import devservers
from ruang import contract
from tests.helpers import eventually

from .snapshots import body
from .test_agent import of_type, running, watcher
from .test_agent_snapshot import push

pytestmark = pytest.mark.servers


def _signers(tmp_path: Path) -> tuple[SnapshotSigner, SnapshotSigner, Path, Path]:
    """The cloud's signer before and after the rotation, and their public key files."""
    old = generate_key_set(tmp_path / "old", snapshot_only=True)
    new = generate_key_set(tmp_path / "new", snapshot_only=True)

    def signer(files: dict[str, Path], extra: list[Path]) -> SnapshotSigner:
        settings = CloudSettings(
            environment="production",
            snapshot_key_path=files["snapshot_key"],
            snapshot_extra_public_keys=extra,
        )
        return SnapshotSigner.from_settings(settings)

    old_pub, new_pub = old.files["snapshot_public_key"], new.files["snapshot_public_key"]
    # Step 1 (nodes learn the new key) runs with the old signer naming the new key as extra.
    return signer(old.files, [new_pub]), signer(new.files, [old_pub]), old_pub, new_pub


def test_cloud_bundle_during_rotation_names_both_keys_and_a_node_trusting_it_takes_either(
    tmp_path: Path,
) -> None:
    before, after, old_pub, new_pub = _signers(tmp_path)
    assert before.key_id != after.key_id
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(before.trusted_bundle)
    assert before.trusted_bundle.startswith(old_pub.read_bytes())
    assert before.trusted_bundle.count(b"BEGIN PUBLIC KEY") == 2
    store = SnapshotStore(tmp_path / "snap.json", load_trusted_keys([bundle]))
    assert sorted(store.trusted_key_ids) == sorted([before.key_id, after.key_id])
    store.apply(before.sign("n1", body(1)))
    store.apply(after.sign("n1", body(2)))
    assert store.current is not None and store.current.version == 2 and store.rejected == 0

    only_new = SnapshotStore(tmp_path / "snap2.json", load_trusted_keys([new_pub]))
    with pytest.raises(SnapshotError) as refused:
        only_new.apply(before.sign("n1", body(3)))
    assert refused.value.reason == "untrusted_key"
    assert before.key_id in str(refused.value)
    # A snapshot naming a trusted key whose signature does not hold is a bad signature.
    forged = after.sign("n1", body(4)).model_copy(update={"body": body(5)})
    with pytest.raises(SnapshotError) as bad:
        only_new.apply(forged)
    assert bad.value.reason == "bad_signature"
    assert dict(only_new.refusals) == {"untrusted_key": 1, "bad_signature": 1}


async def test_rotation_end_to_end_over_the_broker(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    before, after, old_pub, new_pub = _signers(tmp_path)
    both_node, new_node = f"edge-rot-both-{time.time_ns()}", f"edge-rot-new-{time.time_ns()}"

    def node(name: str, keys: list[Path]) -> EdgeSettings:
        return EdgeSettings(
            node_id=name, mqtt_url=mosquitto_server.url, state_dir=tmp_path / name,
            snapshot_public_key=keys[0], snapshot_public_keys=keys[1:], health_interval_s=0.2,
        )  # fmt: skip

    now = time.time()
    pushed: list[contract.Snapshot] = []
    try:
        async with (
            watcher(mosquitto_server.url, new_node) as seen,
            running(EdgeAgent(node(both_node, [old_pub, new_pub]))) as both,
            running(EdgeAgent(node(new_node, [new_pub]))) as only_new,
        ):
            # Before the switch the cloud signs with the old key: the node trusting both
            # takes it, the node trusting only the new key refuses it with the reason.
            for name, version in ((both_node, 1), (new_node, 1)):
                pushed.append(before.sign(name, body(version, now=now)))
                await push(mosquitto_server, pushed[-1])

            async def both_has(version: int) -> bool:
                current = both.snapshots.current
                return current is not None and current.version == version

            await eventually(lambda: both_has(1), what="old-signed snapshot applied")

            async def refused() -> bool:
                return only_new.snapshots.refusals["untrusted_key"] == 1

            await eventually(refused, what="old-signed snapshot refused as untrusted")
            assert only_new.snapshots.current is None

            async def alarm() -> list[str]:
                return [
                    a
                    for h in of_type(seen, contract.NodeHealth)
                    for a in h.alarms  # type: ignore[attr-defined]
                    if before.key_id in a and "trusted" in a
                ]

            await eventually(alarm, what="the refusal raised as a health alarm")

            # After the switch the cloud signs with the new key: both nodes take it.
            for name in (both_node, new_node):
                pushed.append(after.sign(name, body(2, now=now)))
                await push(mosquitto_server, pushed[-1])
            await eventually(lambda: both_has(2), what="new-signed snapshot applied (both)")

            async def only_new_has_2() -> bool:
                current = only_new.snapshots.current
                return current is not None and current.version == 2

            await eventually(only_new_has_2, what="new-signed snapshot applied (new only)")
            assert both.snapshots.refusals.total() == 0
    finally:
        # Clear the retained snapshots so other tests on the shared broker start clean.
        async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as client:
            for snap in pushed:
                await client.publish(contract.topic_for(snap), b"", qos=1, retain=True)


def test_doctor_lists_the_keys_a_node_trusts(tmp_path: Path) -> None:
    before, after, old_pub, new_pub = _signers(tmp_path)
    settings = EdgeSettings(
        node_id="edge-rot-doctor", state_dir=tmp_path / "edge",
        snapshot_public_key=old_pub, snapshot_public_keys=[new_pub],
    )  # fmt: skip
    check = check_snapshot(settings, time.time())
    assert check.level == "WARN"  # nothing stored yet
    assert f"trusted keys: {before.key_id}, {after.key_id}" in check.detail
    store = SnapshotStore(settings.state_dir / "snapshot.json", load_trusted_keys([new_pub]))
    store.apply(after.sign("edge-rot-doctor", body(1, now=time.time())))
    check = check_snapshot(settings, time.time())
    assert check.level == "PASS" and "version 1" in check.detail
    broken = settings.model_copy(update={"snapshot_public_keys": [tmp_path / "missing.pem"]})
    assert check_snapshot(broken, time.time()).level == "FAIL"
