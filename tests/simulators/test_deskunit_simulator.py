"""DeskUnitSimulator behaves like the firmware on its pty, seen through a raw fd."""

from __future__ import annotations

import asyncio
import os

import pytest

from firmware_bridge.deskunit import (
    Ack,
    Capability,
    Frame,
    FrameDecoder,
    Heartbeat,
    Hello,
    LedPattern,
    LedSet,
    Message,
    Nack,
    NackReason,
    PresenceChanged,
    Rejected,
    RequestHello,
    encode_frame,
)
from simulators.deskunit import LED_OFF, DeskUnitSimulator
from tests.simulators import raw_host

TIMEOUT = 5.0


class RawPeer(raw_host.RawHost[Frame | Rejected]):
    """The Pi end of the pty as a bare fd plus the codec, to see exact bytes."""

    def __init__(self, path: str) -> None:
        super().__init__(path, FrameDecoder())

    async def next_of(self, kind: type[Message]) -> Frame:
        async with asyncio.timeout(TIMEOUT):
            while True:
                item = await self.items.get()
                if isinstance(item, Frame) and isinstance(item.message, kind):
                    return item


async def test_pty_path_exists_while_running_and_fds_are_closed_after() -> None:
    before = set(os.listdir("/proc/self/fd"))
    async with DeskUnitSimulator(heartbeat_s=0) as sim:
        assert sim.path.startswith("/dev/pts/") and os.path.exists(sim.path)
        assert len(set(os.listdir("/proc/self/fd")) - before) >= 2
    assert set(os.listdir("/proc/self/fd")) <= before


async def test_sim_answers_request_hello_with_hello_and_sends_heartbeats() -> None:
    async with DeskUnitSimulator("RU-DU-000007", heartbeat_s=0.05) as sim:
        peer = RawPeer(sim.path)
        try:
            peer.write(b"\x00" + encode_frame(0x40, RequestHello()))
            ack = await peer.next_of(Ack)
            assert ack.message == Ack(0x40)
            hello = (await peer.next_of(Hello)).message
            assert isinstance(hello, Hello) and hello.serial == "RU-DU-000007"
            assert hello.capabilities == Capability(15)
            beat = (await peer.next_of(Heartbeat)).message
            assert isinstance(beat, Heartbeat)
        finally:
            peer.close()


async def test_sim_nacks_bad_crc_and_unknown_type_like_the_firmware() -> None:
    async with DeskUnitSimulator(heartbeat_s=0) as sim:
        peer = RawPeer(sim.path)
        try:
            wire = bytearray(encode_frame(0x31, LedSet(1, 2, 3, LedPattern.SOLID)))
            wire[-2] ^= 0x10  # corrupt the CRC's low byte (never makes a 0x00 here)
            assert 0 not in wire[:-1]
            peer.write(bytes(wire))
            assert (await peer.next_of(Nack)).message == Nack(0x31, NackReason.BAD_CRC)
            peer.write(encode_frame(0x32, PresenceChanged(True)))  # Pi->unit? not handled
            assert (await peer.next_of(Nack)).message == Nack(0x32, NackReason.UNKNOWN_TYPE)
            assert sim.led == LED_OFF
            assert sim.stats.decoder.by_reason["bad_crc"] == 1
        finally:
            peer.close()


async def test_led_with_duration_turns_off_by_itself() -> None:
    async with DeskUnitSimulator(heartbeat_s=0) as sim:
        peer = RawPeer(sim.path)
        try:
            # duration_s is whole seconds on the wire; 1 s is the shortest.
            peer.write(encode_frame(1, LedSet(0, 0, 255, LedPattern.BLINK, 1)))
            on = await sim.wait_led(lambda led: led.b == 255, TIMEOUT)
            assert on.duration_s == 1
            off = await sim.wait_led(lambda led: led.pattern == LedPattern.OFF, TIMEOUT)
            assert off == LED_OFF
            assert sim.led_history == [on, off]
        finally:
            peer.close()


async def test_unit_without_led_nacks_ledset() -> None:
    caps = Capability.NFC | Capability.PRESENCE
    async with DeskUnitSimulator(heartbeat_s=0, capabilities=caps) as sim:
        peer = RawPeer(sim.path)
        try:
            peer.write(encode_frame(5, LedSet(1, 1, 1, LedPattern.SOLID)))
            assert (await peer.next_of(Nack)).message == Nack(5, NackReason.UNKNOWN_TYPE)
        finally:
            peer.close()


async def test_unacked_event_is_retransmitted_then_given_up_when_nobody_listens() -> None:
    async with DeskUnitSimulator(heartbeat_s=0, ack_timeout=0.01) as sim:
        await sim.set_presence(True)
        await sim.wait_settled(TIMEOUT)
        outcomes = {(type(s.message).__name__, s.outcome) for s in sim.settled}
        assert ("PresenceChanged", "gave_up") in outcomes
        assert sim.stats.link.retransmits >= 3


async def test_wait_led_times_out_cleanly() -> None:
    async with DeskUnitSimulator(heartbeat_s=0) as sim:
        with pytest.raises(TimeoutError):
            await sim.wait_led(lambda led: led.r == 1, timeout=0.01)


async def test_actions_after_close_raise_connection_error() -> None:
    sim = DeskUnitSimulator(heartbeat_s=0)
    async with sim:
        pass
    with pytest.raises(ConnectionError):
        await sim.tap("04A1B2C3")
