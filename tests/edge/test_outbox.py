"""The durable outbox on real SQLite: group commits, restart, disk bound, corruption, kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from edge.outbox import ALARM_FULL, FILE_NAME, Outbox
from edge.outbox_store import PRIORITY_BY_KIND, ROW_OVERHEAD
from ruang import contract

NODE = "box-1"
REPO = Path(__file__).resolve().parents[2]


def checkin(i: int) -> contract.CheckIn:
    return contract.CheckIn(node=NODE, desk=f"D{i % 50:02d}", badge="04A1B2C3")


def presence(i: int) -> contract.Presence:
    return contract.Presence(node=NODE, desk=f"D{i % 50:02d}", present=bool(i % 2))


def heartbeat(i: int) -> contract.Heartbeat:
    return contract.Heartbeat(node=NODE, desk=f"D{i % 50:02d}", uptime_s=i)


def ids_of(box: Outbox) -> list[str]:
    return [json.loads(r.payload)["id"] for r in sorted(box.all_rows(), key=lambda r: r.seq)]


def test_every_event_and_telemetry_kind_has_exactly_one_priority() -> None:
    kinds = set(contract.EVENT_KINDS) | set(contract.TELEMETRY_KINDS)
    assert set(PRIORITY_BY_KIND) == kinds
    assert PRIORITY_BY_KIND["access"] < PRIORITY_BY_KIND["checkin"] < PRIORITY_BY_KIND["presence"]
    assert PRIORITY_BY_KIND["presence"] < PRIORITY_BY_KIND["heartbeat"]


async def test_puts_of_one_loop_turn_land_in_one_group_commit_and_ack_deletes(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / FILE_NAME)
    commits: list[list[int]] = []
    box.on_commit(lambda rows: commits.append([r.seq for r in rows]))
    seqs = [box.put(checkin(i)) for i in range(100)]
    assert box.depth == 100 and box.all_rows() == []  # accepted, not yet on disk
    await box.flushed()
    assert commits == [seqs]
    assert [r.seq for r in box.all_rows()] == seqs
    for seq in seqs[:60]:
        box.ack(seq)
    await box.flushed()
    assert [r.seq for r in box.all_rows()] == seqs[60:]
    assert box.depth == 40
    box.close()


async def test_reopened_outbox_keeps_unacked_rows_in_order_and_never_reuses_a_seq(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / FILE_NAME)
    messages = [checkin(i) for i in range(10)]
    seqs = [box.put(m) for m in messages]
    await box.flushed()
    for seq in seqs[:3]:
        box.ack(seq)
    await box.flushed()
    box.close()

    again = Outbox(tmp_path / FILE_NAME)
    assert again.recovery is None and again.depth == 7
    assert ids_of(again) == [m.id for m in messages[3:]]
    for seq in seqs[3:]:
        again.ack(seq)
    await again.flushed()
    assert again.depth == 0
    again.close()
    # Even with the table empty, seqs go on growing: the cloud may log them.
    third = Outbox(tmp_path / FILE_NAME)
    assert third.put(checkin(99)) == seqs[-1] + 1
    third.close()


async def test_rows_drain_by_priority_then_seq(tmp_path: Path) -> None:
    box = Outbox(tmp_path / FILE_NAME)
    hb = box.put(heartbeat(1))
    pr = box.put(presence(1))
    ci1 = box.put(checkin(1))
    door = box.put(
        contract.DoorStatus(node=NODE, door="door-1", condition="tamper")  # priority 0
    )
    ci2 = box.put(checkin(2))
    await box.flushed()
    first = box.rows(limit=2)
    rest = box.rows(after=(first[-1].priority, first[-1].seq))
    assert [r.seq for r in first + rest] == [door, ci1, ci2, pr, hb]
    assert [r.channel for r in first + rest][-1] == contract.Channel.TELEMETRY
    box.close()


async def test_disk_bound_drops_lowest_priority_oldest_telemetry_first_and_keeps_all_events(
    tmp_path: Path,
) -> None:
    size = len(contract.encode(heartbeat(10_000))) + ROW_OVERHEAD
    box = Outbox(tmp_path / FILE_NAME, max_bytes=size * 100)
    heartbeats = [box.put(heartbeat(10_000 + i)) for i in range(60)]
    presences = [box.put(presence(i)) for i in range(30)]
    await box.flushed()
    assert box.dropped_telemetry == 0 and box.alarm is None

    # 40 events push the outbox past its bound: the oldest heartbeats go first.
    events = [checkin(i) for i in range(40)]
    for m in events:
        box.put(m)
    await box.flushed()
    kept = {r.seq for r in box.all_rows()}
    assert box.dropped_telemetry > 0
    assert heartbeats[0] not in kept and set(presences) <= kept
    dropped = [s for s in heartbeats if s not in kept]
    assert dropped == heartbeats[: len(dropped)]  # oldest first
    assert box.alarm is None

    # Far more events than the bound holds: every telemetry row goes, no event does.
    more = [checkin(i) for i in range(200)]
    for m in more:
        box.put(m)
    await box.flushed()
    rows = box.all_rows()
    assert all(r.is_event for r in rows)
    assert ids_of(box) == [m.id for m in events + more]
    assert box.dropped_telemetry == 90
    assert box.alarm == ALARM_FULL and box.health()["outbox_alarm"] == ALARM_FULL

    # Telemetry offered while full is dropped at once; the alarm clears once acks free room.
    box.put(heartbeat(1))
    await box.flushed()
    assert box.dropped_telemetry == 91
    for r in rows:
        box.ack(r.seq)
    await box.flushed()
    assert box.alarm is None and box.depth == 0
    box.close()


def _fill_and_close(path: Path, count: int) -> list[contract.Message]:
    box = Outbox(path)
    messages: list[contract.Message] = [
        contract.TapRefused(node=NODE, desk=f"D{i % 50:02d}", badge="04A1B2C3", reason="x" * 120)
        for i in range(count)
    ]
    for m in messages:
        box.put(m)
    box.flush_now()
    box.close()
    return messages


def test_corrupt_file_is_moved_aside_and_every_intact_row_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    messages = _fill_and_close(path, 2000)
    size = path.stat().st_size
    rng = random.Random(7)
    with path.open("r+b") as f:
        for share in (0.3, 0.5, 0.7):
            f.seek(int(size * share) // 4096 * 4096)
            f.write(rng.randbytes(4096))

    box = Outbox(path)
    recovery = box.recovery
    assert recovery is not None and recovery.moved_to.exists()
    assert recovery.moved_to.name.startswith(f"{FILE_NAME}.corrupt-")
    assert recovery.lost is not None and recovery.lost > 0
    assert 0 < recovery.recovered < 2000
    assert recovery.recovered + recovery.lost >= 2000
    # What came back is exactly what was written, in the original order.
    by_id = {m.id: contract.encode(m) for m in messages}
    order = {m.id: i for i, m in enumerate(messages)}
    rows = sorted(box.all_rows(), key=lambda r: r.seq)
    assert len(rows) == recovery.recovered
    assert all(by_id[json.loads(r.payload)["id"]] == r.payload for r in rows)
    positions = [order[json.loads(r.payload)["id"]] for r in rows]
    assert positions == sorted(positions)
    health = box.health()
    assert health["outbox_recovered"] == recovery.recovered
    assert health["outbox_lost"] == recovery.lost
    # The fresh file is sound and takes new rows after the old seqs.
    assert box.integrity() is None
    assert box.put(checkin(1)) > rows[-1].seq
    box.close()


def test_file_of_pure_garbage_opens_empty_and_says_the_loss_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(random.Random(3).randbytes(64 * 1024))
    box = Outbox(path)
    assert box.recovery is not None
    assert box.recovery.recovered == 0 and box.recovery.lost is None
    assert box.depth == 0 and box.integrity() is None
    box.close()


_WRITER = """
import asyncio, sys
from pathlib import Path
from edge.outbox import Outbox
from ruang import contract

async def main() -> None:
    box = Outbox(Path(sys.argv[1]))
    i = 0
    while True:
        ids = []
        for _ in range(int(sys.argv[2])):
            message = contract.CheckIn(node="kill-1", desk=f"D{i % 50:02d}", badge="04A1B2C3")
            box.put(message)
            ids.append(message.id)
            i += 1
        await box.flushed()
        # Only now are they durable: say so.
        print(" ".join(ids), flush=True)
        await asyncio.sleep(0)

asyncio.run(main())
"""


async def test_sigkill_mid_burst_keeps_every_event_reported_durable_and_a_consistent_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / FILE_NAME
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        str(path),
        "37",
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    durable: list[str] = []
    try:
        while len(durable) < 3000:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line, "writer exited early"
            durable.extend(line.split()[i].decode() for i in range(37))
    finally:
        child.send_signal(signal.SIGKILL)
        rest = await child.stdout.read()
        await child.wait()
    # Lines already in the pipe were printed after their flush: they count too.
    for line in rest.splitlines():
        words = line.split()
        if len(words) == 37:  # a line cut by the kill was never a promise
            durable.extend(w.decode() for w in words)

    box = Outbox(path)
    assert box.recovery is None and box.integrity() is None
    stored = ids_of(box)
    assert stored[: len(durable)] == durable  # all there, in put order, nothing before them lost
    box.close()


# --- cloud acks (event_ack) -----------------------------------------------------------------


def test_an_event_stays_after_its_puback_until_the_cloud_acks_it(tmp_path: Path) -> None:
    box = Outbox(tmp_path / FILE_NAME, cloud_ack_timeout_s=30.0)
    events = [checkin(i) for i in range(3)]
    for message in events:
        box.put(message)
    box.put(heartbeat(0))
    box.flush_now()
    rows = sorted(box.all_rows(), key=lambda r: r.seq)
    for row in rows:
        box.published(row)
    box.flush_now()
    # Telemetry is gone at its PUBACK; the events wait for the cloud, counted apart.
    assert box.depth == 0 and box.awaiting_ack == 3
    assert ids_of(box) == [m.id for m in events]
    assert box.due_for_resend() == []
    assert [r.msg_id for r in box.due_for_resend(now=10**10)] == [m.id for m in events]
    box.cloud_acked([events[0].id, events[2].id, "no-such-id-123"])
    box.flush_now()
    assert box.awaiting_ack == 1 and ids_of(box) == [events[1].id]
    assert box.health()["outbox_awaiting_ack"] == 1
    box.close()
    # The state survives a restart.
    again = Outbox(tmp_path / FILE_NAME, cloud_ack_timeout_s=30.0)
    assert again.depth == 0 and again.awaiting_ack == 1
    again.close()


def test_resends_back_off_doubling_up_to_the_cap(tmp_path: Path) -> None:
    box = Outbox(tmp_path / FILE_NAME, cloud_ack_timeout_s=10.0, cloud_ack_max_backoff_s=35.0)
    box.put(checkin(0))
    box.flush_now()
    waits = []
    for _ in range(4):
        [row] = box.all_rows()
        box.published(row)
        box.flush_now()
        (due,) = box._db.execute("SELECT resend_at - strftime('%s', 'now') FROM outbox").fetchone()
        waits.append(round(due / 5) * 5)
    assert waits == [10, 20, 35, 35]
    assert box.depth == 0 and box.awaiting_ack == 1  # a resend does not count twice
    box.close()


def test_cloud_acks_off_deletes_events_at_the_puback(tmp_path: Path) -> None:
    box = Outbox(tmp_path / FILE_NAME, cloud_ack_timeout_s=None)
    box.put(checkin(0))
    box.flush_now()
    [row] = box.all_rows()
    box.published(row)
    box.flush_now()
    assert box.depth == 0 and box.awaiting_ack == 0 and box.all_rows() == []
    box.close()


def test_a_version_1_file_is_migrated_in_place_and_keeps_every_row(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / FILE_NAME
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, priority INTEGER NOT NULL,
            kind TEXT NOT NULL, channel TEXT NOT NULL, created REAL NOT NULL,
            payload BLOB NOT NULL, is_event INTEGER NOT NULL);
        CREATE INDEX outbox_drain ON outbox (priority, seq);
        """
    )
    messages: list[contract.Message] = [checkin(0), presence(1), checkin(2)]
    for seq, m in enumerate(messages, start=1):
        kind = contract.kind_of(m)
        old.execute(
            "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, PRIORITY_BY_KIND[kind], kind, "events", m.ts, contract.encode(m),
             int(contract.is_event(m))),
        )  # fmt: skip
    old.close()
    box = Outbox(path)
    assert box.depth == 3 and box.awaiting_ack == 0
    assert ids_of(box) == [m.id for m in messages]
    for row in box.all_rows():
        box.published(row)
    box.flush_now()
    assert box.awaiting_ack == 2
    # The migrated events carry their message ids: the cloud's ack finds them.
    box.cloud_acked([messages[0].id, messages[2].id])
    box.flush_now()
    assert box.all_rows() == [] and box.awaiting_ack == 0
    assert box.put(checkin(9)) == 4  # seqs go on where the old file left off
    box.close()


async def test_close_waits_for_a_probe_still_running_on_its_thread(tmp_path: Path) -> None:
    """The watchdog's probe runs on a worker thread that cancelling does not stop;
    closing the outbox under it used to crash the process inside sqlite3."""
    box = Outbox(tmp_path / FILE_NAME)
    holder = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the probe now waits for the write lock
    probing = asyncio.get_running_loop().run_in_executor(None, box.probe, 1.0)
    await asyncio.sleep(0.2)  # let the probe reach its busy wait
    holder.execute("ROLLBACK")
    holder.close()
    box.close()  # must wait for the probe, not close its connection under it
    await probing  # the probe finished on an open connection
    with pytest.raises(sqlite3.ProgrammingError):
        box.probe()
