"""The door driver against a simulated OSDP reader over a real socat pty pair, secure channel on."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from osdp import Command, CommandLEDColor

from edge.devices.access_policy import AccessPolicy, AllowList, BadgeEntry, WeeklySchedule
from edge.devices.audit_log import AuditLog
from edge.devices.door import DoorConfig, DoorController
from edge.devices.door_keys import generate_node_key, seal_key
from edge.devices.osdp_link import badge_ref
from ruang import contract
from ruang.backoff import Backoff
from simulators.osdp_reader import OsdpReaderSim
from tests.helpers import eventually

SCBK = bytes.fromhex("00112233445566778899aabbccddeeff")
ALLOWED_UID = bytes.fromhex("04A1B2C3D4E5F6")
WIEGAND_26 = (26, 0x2A5A5A5)


@dataclass
class Rig:
    sim: OsdpReaderSim
    controller: DoorController
    published: list[contract.Message]
    audit: AuditLog

    def of(self, kind: type[contract.Message]) -> list[contract.Message]:
        return [m for m in self.published if isinstance(m, kind)]

    async def wait_for(
        self, predicate: Callable[[contract.Message], bool], what: str
    ) -> contract.Message:
        async def probe() -> contract.Message | None:
            return next((m for m in self.published if predicate(m)), None)

        found = await eventually(probe, timeout=20, what=what)
        assert found is not None
        return found


def _status(condition: str) -> Callable[[contract.Message], bool]:
    return lambda m: isinstance(m, contract.DoorStatus) and m.condition == condition


@pytest.fixture
def kek() -> bytes:
    return generate_node_key()


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator[Callable[[bytes], OsdpReaderSim]]:
    started: list[OsdpReaderSim] = []

    def make(scbk: bytes) -> OsdpReaderSim:
        sim = OsdpReaderSim(scbk, cp_port=tmp_path / "rs485")
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


async def _rig(tmp_path: Path, kek: bytes, sim: OsdpReaderSim) -> AsyncIterator[Rig]:
    door = DoorConfig(
        id="door-lobby",
        port=str(sim.cp_port),
        scbk_sealed=seal_key(SCBK.hex(), kek),
        schedule=WeeklySchedule.always(),
        open_ms=3000,
    )
    allow = AllowList(
        version=1,
        entries=(
            BadgeEntry(badge=ALLOWED_UID.hex().upper(), person="Ayu", agency="Bappenas"),
            BadgeEntry(badge=badge_ref({"data": bytes.fromhex("A9696940")}) or "", person="W"),
        ),
    )
    published: list[contract.Message] = []
    audit = AuditLog(tmp_path / "audit.sqlite3")
    controller = DoorController(
        [door],
        node_id="node-1",
        publish=published.append,
        policy=AccessPolicy(allow, {}),
        audit=audit,
        kek=kek,
        backoff=Backoff(base=0.05, cap=0.3),
    )
    task = asyncio.create_task(controller.run())
    try:
        yield Rig(sim, controller, published, audit)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        audit.close()


@pytest.fixture
async def rig(
    tmp_path: Path, kek: bytes, sim_factory: Callable[[bytes], OsdpReaderSim]
) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, kek, sim_factory(SCBK)):
        await r.wait_for(_status("online"), "reader online")
        yield r


async def test_reader_with_the_right_key_comes_online_in_secure_channel(rig: Rig) -> None:
    assert rig.sim.is_secure()
    health = rig.controller.health()
    assert health.kind == "door" and health.online
    assert health.detail == "secure channel active"


async def test_reader_with_a_wrong_key_never_gets_a_secure_channel(
    tmp_path: Path, kek: bytes, sim_factory: Callable[[bytes], OsdpReaderSim]
) -> None:
    wrong = sim_factory(bytes(16))
    async for r in _rig(tmp_path, kek, wrong):
        offline = await r.wait_for(_status("offline"), "offline report")
        assert isinstance(offline, contract.DoorStatus)
        assert "no secure channel" in (offline.detail or "")
        statuses = [m for m in r.published if isinstance(m, contract.DoorStatus)]
        assert all(m.condition != "online" for m in statuses)
        assert not r.controller.health().online
        assert not wrong.is_secure()
        # A card on an untrusted reader never reaches the policy: libosdp drops
        # everything from a PD without a secure channel. (Negative check: give it
        # ample polling cycles, then look.)
        wrong.present_card(ALLOWED_UID)
        await asyncio.sleep(0.5)
        assert r.of(contract.AccessDecision) == []
        assert r.audit.pending() == []


async def test_allowed_card_opens_the_strike_and_publishes_a_granted_audited_decision(
    rig: Rig,
) -> None:
    rig.sim.present_card(ALLOWED_UID)
    decision = await rig.wait_for(lambda m: isinstance(m, contract.AccessDecision), "decision")
    assert isinstance(decision, contract.AccessDecision)
    assert (decision.door, decision.badge) == ("door-lobby", "04A1B2C3D4E5F6")
    assert decision.granted and decision.reason == "allowed"
    [entry] = rig.audit.pending()
    assert (entry.seq, entry.hash) == (decision.audit_seq, decision.audit_hash)
    assert entry.granted and entry.badge == "04A1B2C3D4E5F6"

    async def three_commands() -> bool:
        return len(rig.sim.received()) >= 3

    await eventually(three_commands, what="reader commands")
    by_kind = {c["command"]: c for c in rig.sim.received()}
    assert by_kind[Command.Output]["output_no"] == 0
    assert by_kind[Command.Output]["timer_count"] == 30  # 3000 ms in 100 ms ticks
    assert by_kind[Command.LED]["on_color"] == CommandLEDColor.Green
    assert by_kind[Command.Buzzer]["rep_count"] == 1
    health = rig.controller.health()
    assert health.last_reading_ts == decision.ts


async def test_unknown_card_is_denied_with_red_led_two_beeps_and_no_strike(rig: Rig) -> None:
    rig.sim.present_card(bytes.fromhex("DEADBEEF"))
    decision = await rig.wait_for(lambda m: isinstance(m, contract.AccessDecision), "decision")
    assert isinstance(decision, contract.AccessDecision)
    assert not decision.granted and decision.reason == "unknown badge"
    assert decision.badge == "DEADBEEF" and decision.audit_seq == 1

    async def two_commands() -> bool:
        return len(rig.sim.received()) >= 2

    await eventually(two_commands, what="reader commands")
    kinds = {c["command"]: c for c in rig.sim.received()}
    assert Command.Output not in kinds
    assert kinds[Command.LED]["on_color"] == CommandLEDColor.Red
    assert kinds[Command.LED]["off_count"] > 0  # blinking
    assert kinds[Command.Buzzer]["rep_count"] == 2


async def test_26_bit_wiegand_card_is_identified_by_its_raw_bits_as_hex(rig: Rig) -> None:
    rig.sim.present_wiegand(*WIEGAND_26)
    decision = await rig.wait_for(lambda m: isinstance(m, contract.AccessDecision), "decision")
    assert isinstance(decision, contract.AccessDecision)
    # 26 bits, MSB first, left-aligned in 4 bytes.
    assert decision.badge == f"{WIEGAND_26[1] << 6:08X}" == "A9696940"
    assert decision.granted


async def test_tamper_and_power_reports_become_door_status_events(rig: Rig) -> None:
    rig.sim.set_tamper(True)
    await rig.wait_for(_status("tamper"), "tamper")
    assert "tamper" in (rig.controller.health().detail or "")
    rig.sim.set_tamper(False)
    await rig.wait_for(_status("tamper_cleared"), "tamper cleared")
    rig.sim.power_fail()
    await rig.wait_for(_status("power_fail"), "power fail")
    rig.sim.power_restored()
    await rig.wait_for(_status("power_restored"), "power restored")
    conditions = [m.condition for m in rig.published if isinstance(m, contract.DoorStatus)]
    assert conditions == ["online", "tamper", "tamper_cleared", "power_fail", "power_restored"]


async def test_vanished_port_is_reported_offline_and_reattached_when_it_returns(
    rig: Rig, sim_factory: Callable[[bytes], OsdpReaderSim]
) -> None:
    rig.sim.stop()  # the USB-RS485 adapter is unplugged: the pty disappears
    await rig.wait_for(_status("offline"), "offline report")

    async def port_reported() -> bool:
        health = rig.controller.health()
        return not health.online and "port unavailable" in (health.detail or "")

    await eventually(port_reported, what="port loss in health")
    back = sim_factory(SCBK)  # plugged back in at the same path
    rig.sim = back

    async def online_twice() -> bool:
        statuses = [m for m in rig.published if isinstance(m, contract.DoorStatus)]
        return [m.condition for m in statuses] == ["online", "offline", "online"]

    await eventually(online_twice, what="online again")
    rig.sim.present_card(ALLOWED_UID)
    await rig.wait_for(lambda m: isinstance(m, contract.AccessDecision), "decision after reattach")


async def test_reader_that_stops_answering_goes_offline_and_is_reprobed_when_back(
    rig: Rig,
) -> None:
    rig.sim.power_off()  # the bus stays, the reader lost its 12 V
    offline = await rig.wait_for(_status("offline"), "offline report")
    assert isinstance(offline, contract.DoorStatus)
    assert offline.detail == "reader stopped answering"
    rig.sim.power_on()

    async def online_again() -> bool:
        statuses = [m for m in rig.published if isinstance(m, contract.DoorStatus)]
        return statuses[-1].condition == "online"

    await eventually(online_again, what="online again")
    assert rig.sim.is_secure()


def test_simulator_stop_ends_socat_and_removes_the_port(tmp_path: Path) -> None:
    sim = OsdpReaderSim(SCBK, cp_port=tmp_path / "bus")
    sim.start()
    pid = sim.socat_pid
    assert pid is not None and sim.cp_port.exists()
    sim.stop()
    assert not sim.cp_port.exists()
    assert not os.path.exists(f"/proc/{pid}") or _is_zombie_free(pid)


def _is_zombie_free(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return True


def test_badge_ref_accepts_4_to_10_byte_uids_and_rejects_other_lengths() -> None:
    assert badge_ref({"data": bytes.fromhex("01020304")}) == "01020304"
    assert badge_ref({"data": bytes(range(10))}) == "00010203040506070809"
    assert badge_ref({"data": b"\x01\x02\x03"}) is None
    assert badge_ref({"data": bytes(11)}) is None


def test_door_config_refuses_a_plain_text_scbk() -> None:
    with pytest.raises(ValueError, match="plain text"):
        DoorConfig(id="d1", port="/dev/ttyUSB0", scbk_sealed=SCBK.hex(), schedule=WeeklySchedule())
