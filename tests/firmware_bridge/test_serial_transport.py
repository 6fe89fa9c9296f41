"""DeskUnitPort over a real pseudo-terminal, against the desk unit simulator.

No serial mocks: pyserial opens the simulator's pty slave exactly as it would
open /dev/ttyAMA0. Timeouts below only bound a hang; nothing asserts on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from firmware_bridge.deskunit import (
    BadgeRead,
    ButtonPressed,
    Frame,
    Hello,
    LedPattern,
    LedSet,
    Message,
    NackReason,
    PresenceChanged,
    RequestHello,
)
from firmware_bridge.serial_transport import (
    DeliveryFailed,
    DeskUnitPort,
    NackError,
    PortClosed,
)
from simulators.deskunit import DeskUnitSimulator

TIMEOUT = 5.0


async def next_of(port: DeskUnitPort, kind: type[Message]) -> Frame:
    """The next delivered frame carrying a `kind` message (skipping heartbeats etc.)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            frame = await port.receive()
            if isinstance(frame.message, kind):
                return frame


@pytest.fixture
async def sim() -> AsyncIterator[DeskUnitSimulator]:
    async with DeskUnitSimulator("RU-DU-000042", heartbeat_s=0.5) as unit:
        yield unit


async def test_port_receives_hello_on_open(sim: DeskUnitSimulator) -> None:
    async with DeskUnitPort.open(sim.path) as port:
        hello = (await next_of(port, Hello)).message
        assert isinstance(hello, Hello)
        assert hello.serial == "RU-DU-000042"
        assert hello.firmware == (1, 4, 2)


async def test_badge_tap_is_delivered_and_acked(sim: DeskUnitSimulator) -> None:
    async with DeskUnitPort.open(sim.path) as port:
        await next_of(port, Hello)
        await sim.tap("04A1B2C3")
        frame = await next_of(port, BadgeRead)
        assert frame.message == BadgeRead(bytes.fromhex("04A1B2C3"))
        await sim.wait_settled(TIMEOUT)
        assert [s.outcome for s in sim.settled if s.message == frame.message] == ["acked"]


async def test_send_ledset_changes_sim_led_and_returns_after_ack(
    sim: DeskUnitSimulator,
) -> None:
    async with DeskUnitPort.open(sim.path) as port:
        command = LedSet(0, 255, 0, LedPattern.PULSE, 0)
        await asyncio.wait_for(port.send(command), TIMEOUT)
        # send() returned after the Ack, and the unit acks before acting on the
        # frame in the same read, so the state is already visible.
        assert (sim.led.r, sim.led.g, sim.led.b, sim.led.pattern) == (0, 255, 0, LedPattern.PULSE)
        assert sim.led_history[-1] == sim.led
        assert port.stats.link.acked >= 1


async def test_wait_led_sees_a_later_change(sim: DeskUnitSimulator) -> None:
    async with DeskUnitPort.open(sim.path) as port:
        waiting = asyncio.create_task(sim.wait_led(lambda led: led.r == 200, TIMEOUT))
        await port.send(LedSet(200, 0, 0, LedPattern.BLINK, 0))
        state = await waiting
        assert state.pattern == LedPattern.BLINK


async def test_corrupted_frame_is_rejected_counted_and_link_recovers(
    sim: DeskUnitSimulator,
) -> None:
    async with DeskUnitPort.open(sim.path) as port:
        await next_of(port, Hello)
        sim.fault.corrupt_next = 1
        await sim.press(2, long=True)
        # The Pi Nacks BAD_CRC, the unit resends at once, the press arrives once.
        assert (await next_of(port, ButtonPressed)).message == ButtonPressed(2, True)
        assert port.stats.decoder.by_reason["bad_crc"] == 1
        assert port.stats.link.nacks_sent >= 1
        await sim.set_presence(True)
        assert (await next_of(port, PresenceChanged)).message == PresenceChanged(True)


async def test_garbage_on_the_line_is_skipped_and_next_frames_decode(
    sim: DeskUnitSimulator,
) -> None:
    async with DeskUnitPort.open(sim.path) as port:
        await next_of(port, Hello)
        await sim.inject_raw(b"\x13\x37noise\xff\xfe" * 20 + b"\x00")
        await sim.tap(bytes(10))
        assert (await next_of(port, BadgeRead)).message == BadgeRead(bytes(10))
        assert port.stats.decoder.rejected >= 1


async def test_lost_frames_from_pi_are_retransmitted_until_acked(
    sim: DeskUnitSimulator,
) -> None:
    async with DeskUnitPort.open(sim.path, request_hello=False) as port:
        # Let the power-on Hello settle first, so only our LedSet is on the line.
        await sim.wait_settled(TIMEOUT)
        sim.fault.drop_next_rx = 2
        await asyncio.wait_for(port.send(LedSet(1, 2, 3, LedPattern.SOLID)), TIMEOUT)
        assert port.stats.retransmits == 2
        assert sim.led.b == 3
        assert [f.message for f in sim.received].count(LedSet(1, 2, 3, LedPattern.SOLID)) == 1


async def test_send_gives_up_with_clear_error_when_unit_never_answers(
    sim: DeskUnitSimulator,
) -> None:
    async with DeskUnitPort.open(sim.path, request_hello=False, ack_timeout=0.02) as port:
        await sim.wait_settled(TIMEOUT)
        sim.fault.drop_next_rx = 100
        with pytest.raises(DeliveryFailed, match="did not ack LedSet after 4 attempts"):
            await asyncio.wait_for(port.send(LedSet(9, 9, 9, LedPattern.SOLID)), TIMEOUT)
        assert port.stats.give_ups == 1


async def test_send_raises_nack_error_for_a_message_the_unit_refuses(
    sim: DeskUnitSimulator,
) -> None:
    async with DeskUnitPort.open(sim.path) as port:
        with pytest.raises(NackError) as info:
            await asyncio.wait_for(port.send(BadgeRead(b"1234")), TIMEOUT)
        assert info.value.reason is NackReason.UNKNOWN_TYPE
        assert "UNKNOWN_TYPE" in str(info.value)


async def test_request_hello_is_answered_with_hello(sim: DeskUnitSimulator) -> None:
    async with DeskUnitPort.open(sim.path, request_hello=False) as port:
        await port.send(RequestHello())
        assert isinstance((await next_of(port, Hello)).message, Hello)


async def test_closing_the_simulator_ends_iteration_with_port_closed() -> None:
    async with DeskUnitSimulator(heartbeat_s=0) as unit:
        async with DeskUnitPort.open(unit.path) as port:
            await next_of(port, Hello)
            await unit.close()
            with pytest.raises(PortClosed, match="lost"):
                async with asyncio.timeout(TIMEOUT):
                    async for _frame in port:
                        pass
            assert isinstance(port.stats.decoder.frames, int)
            with pytest.raises(ConnectionError):
                await port.send(LedSet(0, 0, 0, LedPattern.OFF))


async def test_iteration_ends_quietly_after_our_own_close(sim: DeskUnitSimulator) -> None:
    async with DeskUnitPort.open(sim.path) as port:
        await next_of(port, Hello)

        async def drain() -> int:
            return len([frame async for frame in port])

        task = asyncio.create_task(drain())
        await asyncio.sleep(0)
        await port.close()
        assert await asyncio.wait_for(task, TIMEOUT) >= 0
