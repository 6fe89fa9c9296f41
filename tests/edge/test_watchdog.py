"""Per-subsystem watchdogs (edge/watchdog.py) against really stalled subsystems.

A radar whose port stays open but goes silent (the LD2410 simulator on a real pty),
an uplink whose broker stops answering (a real Mosquitto, SIGSTOPped), a subsystem
blocked on an event nobody sets, and an outbox file another process holds locked.
systemd's notify socket is a real unix datagram socket. Intervals are fractions of
a second; nothing asserts on the wall clock, only on what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge import watchdog as wd_module
from edge.devices.radar import RadarConfig, RadarDriver
from edge.outbox import Outbox
from edge.settings import EdgeSettings
from edge.uplink import Uplink
from edge.watchdog import Watchdog, outbox_probe
from launch import devservers
from ruang import contract
from ruang.backoff import Backoff
from simulators.ld2410 import LD2410Simulator
from tests.helpers import eventually


def _fast_backoff() -> Backoff:
    return Backoff(base=0.02, cap=0.1)


@contextlib.asynccontextmanager
async def watching(dog: Watchdog) -> AsyncIterator[Watchdog]:
    task = asyncio.create_task(dog.run())
    try:
        yield dog
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_radar_whose_port_goes_silent_is_restarted_and_alarmed() -> None:
    dog = Watchdog(interval_s=0.05, hard_limit_s=60, backoff=_fast_backoff)
    out: list[contract.Message] = []
    async with LD2410Simulator(report_hz=50) as radar:
        config = RadarConfig(device="radar-wd", desk="L1-03", port=radar.path)
        driver = RadarDriver(config, "edge-l1", out.append, backoff=_fast_backoff())
        async with watching(dog):
            beat = dog.supervise("radar:radar-wd", driver.run, stale_after_s=0.5)

            async def online() -> bool:
                return driver.online and driver.reports > 5

            await eventually(online, timeout=10, what="radar online and reporting")
            assert beat.restarts == 0 and dog.alarms() == ()

            # The port stays open, the radar simply stops sending: no EOF, no error,
            # the driver's read would wait forever.
            radar.report_hz = 0

            async def restarted() -> bool:
                return beat.restarts >= 1 and driver.sessions >= 2

            await eventually(restarted, timeout=10, what="the silent radar's session restarted")
            alarms = dog.alarms()
            assert any(
                a.startswith("watchdog: radar:radar-wd stalled") and a.endswith(", restarted")
                for a in alarms
            ), alarms
            row = next(r for r in dog.table() if r["subsystem"] == "radar:radar-wd")
            assert row["restarts"] >= 1 and row["restartable"]


async def test_an_uplink_whose_broker_stops_answering_gets_its_connection_restarted(
    tmp_path: Path,
) -> None:
    async def ignore(_: contract.Message) -> None:
        return None

    dog = Watchdog(interval_s=0.05, hard_limit_s=60, backoff=_fast_backoff)
    with devservers.mosquitto() as broker:
        settings = EdgeSettings(
            node_id="wd-uplink", mqtt_url=broker.url, state_dir=tmp_path,
            watchdog_uplink_stale_s=0.8, max_inflight=2, event_ack_timeout_s=0,
        )  # fmt: skip
        uplink = Uplink(
            settings,
            birth=lambda b: contract.NodeState(node="wd-uplink", online=True, bdseq=b),
            on_command=ignore,
            backoff=Backoff(base=0.05, cap=0.2),
        )
        async with watching(dog):
            beat = dog.supervise("uplink", uplink.run, settings.watchdog_uplink_stale_s)
            await asyncio.wait_for(uplink.connected.wait(), 10)
            # Connected and idle: the pumps keep beating.
            await asyncio.sleep(1.2)
            assert beat.restarts == 0
            assert broker.proc is not None
            broker.proc.send_signal(signal.SIGSTOP)
            try:
                # The TCP connection stays up; the PUBACKs never come.
                for i in range(5):
                    uplink.publish(contract.ButtonPressed(node="wd-uplink", desk="D1", button=i))

                async def restarted() -> bool:
                    return beat.restarts >= 1

                await eventually(restarted, timeout=15, what="the stuck uplink restarted")
                assert any(
                    a.startswith("watchdog: uplink stalled") and a.endswith(", restarted")
                    for a in dog.alarms()
                ), dog.alarms()
            finally:
                broker.proc.send_signal(signal.SIGCONT)

            # The restarted connection delivers what the stuck one could not.
            async def delivered() -> bool:
                return uplink.connected.is_set() and uplink.queued == 0

            await eventually(delivered, timeout=30, what="backlog delivered after the restart")
        uplink.outbox.close()


async def test_systemd_is_no_longer_fed_once_a_subsystem_stays_stalled_past_the_hard_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    never = asyncio.Event()

    async def stuck() -> None:
        # Beats once after every (re)start, then waits on an event nobody sets: a
        # restart "helps" for a moment only, which must not hide the stall forever.
        wd_module.beat()
        await never.wait()

    async def healthy() -> None:
        while True:
            wd_module.beat()
            await asyncio.sleep(0.02)

    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        dog = Watchdog(interval_s=0.02, hard_limit_s=0.6, backoff=_fast_backoff)
        async with watching(dog):
            dog.supervise("fine", healthy, stale_after_s=0.2)
            beat = dog.supervise("stuck", stuck, stale_after_s=0.2)

            async def fed() -> bool:
                return dog.notifications >= 3

            await eventually(fed, timeout=5, what="WATCHDOG=1 sent while all is well")
            assert systemd.recv(64) == b"WATCHDOG=1"

            async def withheld() -> bool:
                return dog.withheld >= 1

            await eventually(withheld, timeout=10, what="WATCHDOG=1 withheld")
            assert beat.restarts >= 2  # restarted (with backoff) before giving up
            # Drain what was sent before the hard limit, then nothing more may arrive.
            with contextlib.suppress(BlockingIOError):
                while True:
                    systemd.recv(64)
            sent = dog.notifications
            held = dog.withheld

            async def more_withheld() -> bool:
                return dog.withheld >= held + 10

            await eventually(more_withheld, timeout=10, what="ten more rounds withheld")
            assert dog.notifications == sent
            with pytest.raises(BlockingIOError):
                systemd.recv(64)
            row = next(r for r in dog.table() if r["subsystem"] == "stuck")
            assert row["state"] == "stalled"
            assert next(r for r in dog.table() if r["subsystem"] == "fine")["state"] == "ok"


async def test_a_locked_outbox_file_fails_the_probe_and_raises_an_alarm(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    dog = Watchdog(interval_s=0.05, hard_limit_s=60)
    beat = dog.register("outbox", stale_after_s=0.5)
    probe = asyncio.create_task(outbox_probe(outbox, beat, interval_s=0.05, timeout_s=0.4))
    try:
        async with watching(dog):

            async def probed() -> bool:
                return beat.error is None and not beat.stale(beat.clock())

            await eventually(probed, timeout=5, what="the probe passing")
            assert dog.alarms() == ()
            # Another process-like holder of the write lock: the probe cannot write.
            holder = sqlite3.connect(tmp_path / "outbox.sqlite3", isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:

                async def alarmed() -> bool:
                    alarms = dog.alarms()
                    return any(
                        "outbox: probe failed: database is locked" in a for a in alarms
                    ) and any(a.startswith("watchdog: outbox stalled") for a in alarms)

                await eventually(alarmed, timeout=10, what="the locked-outbox alarm")
            finally:
                holder.execute("ROLLBACK")
                holder.close()

            async def cleared() -> bool:
                return beat.error is None and not beat.stale(beat.clock())

            await eventually(cleared, timeout=5, what="the probe passing again")
            assert not any("probe failed" in a for a in dog.alarms())
    finally:
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
        outbox.close()


def test_edge_status_prints_the_watchdog_table(tmp_path: Path) -> None:
    from edge.status import format_status

    status = {
        "node": "n1", "written_at": 1000.0, "health_interval_s": 30, "uptime_s": 5,
        "outbox_depth": 0, "outbox_awaiting_ack": 3,
        "watchdog": [
            {"subsystem": "uplink", "state": "ok", "last_beat_s": 0.2, "stale_after_s": 60,
             "restarts": 1, "restartable": True,
             "detail": "watchdog: uplink stalled 61 s, restarted"},
            {"subsystem": "outbox", "state": "stalled", "last_beat_s": 31.0,
             "stale_after_s": 20, "restarts": 0, "restartable": False,
             "detail": "probe failed: database is locked"},
        ],
    }  # fmt: skip
    text, alive = format_status(status, tmp_path, now=1001.0)
    assert alive
    assert "awaiting cloud ack  3" in text
    assert "watchdog: 1 of 2 subsystems ok" in text
    lines = text.splitlines()
    assert any(line.startswith("uplink") and "restarted" in line for line in lines)
    assert any(line.startswith("outbox") and "stalled" in line and "locked" in line
               for line in lines)  # fmt: skip
