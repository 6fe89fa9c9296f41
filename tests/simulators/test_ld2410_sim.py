"""LD2410Simulator behaves like the radar on its pty, seen through a raw fd and the codec."""

from __future__ import annotations

import os

from firmware_bridge.ld2410 import (
    Ack,
    CloseEngineering,
    Command,
    ConfigurationInfo,
    EnableConfiguration,
    EnableEngineering,
    EndConfiguration,
    FactoryReset,
    FirmwareVersion,
    FrameDecoder,
    Item,
    Parameters,
    ReadFirmwareVersion,
    ReadParameters,
    Report,
    Restart,
    SetGateSensitivity,
    SetMaxGates,
    TargetState,
    encode_command,
)
from simulators.ld2410 import LD2410Simulator
from tests.simulators import raw_host


class RawHost(raw_host.RawHost[Item]):
    """The host end of the radar's pty: reports, and commands with their ACKs."""

    def __init__(self, path: str) -> None:
        super().__init__(path, FrameDecoder())

    async def report(self) -> Report:
        return await self.next_item(Report)

    async def command(self, command: Command) -> Ack:
        self.write(encode_command(command))
        return await self.next_item(Ack)


async def test_streams_basic_reports_of_the_scripted_target() -> None:
    async with LD2410Simulator(report_hz=100) as radar:
        host = RawHost(radar.path)
        try:
            radar.set_target(TargetState.BOTH, 150, 70, 160, 40)
            while (report := await host.report()).target is not TargetState.BOTH:
                pass
            assert report == Report(TargetState.BOTH, 150, 70, 160, 40, 160)
            assert report.engineering is None
        finally:
            host.close()


async def test_answers_the_configuration_sequence_with_datasheet_acks() -> None:
    async with LD2410Simulator(report_hz=100) as radar:
        host = RawHost(radar.path)
        try:
            ack = await host.command(EnableConfiguration())
            assert ack == Ack(0x00FF, 0, ConfigurationInfo(1, 0x40))
            assert (await host.command(ReadFirmwareVersion())).info == FirmwareVersion(
                0x0100, 0x0204, 0x23022511
            )
            assert (await host.command(SetMaxGates(5, 4, 10))).ok
            assert (await host.command(SetGateSensitivity(2, 60, 45))).ok
            params = (await host.command(ReadParameters())).info
            assert isinstance(params, Parameters)
            assert (params.max_moving_gate, params.max_static_gate, params.unmanned_s) == (5, 4, 10)
            assert (params.moving_sensitivity[2], params.static_sensitivity[2]) == (60, 45)
            assert (await host.command(EndConfiguration())).ok
            assert not radar.state.config_mode
        finally:
            host.close()


async def test_commands_outside_configuration_mode_are_ignored() -> None:
    async with LD2410Simulator(report_hz=100) as radar:
        host = RawHost(radar.path)
        try:
            os.write(host.fd, encode_command(SetMaxGates(2, 2, 1)))
            # Reports keep flowing and no ACK comes back.
            for _ in range(5):
                await host.report()
            assert radar.state.max_moving_gate == 8
            assert radar.commands == []
        finally:
            host.close()


async def test_engineering_mode_switches_report_type_and_back() -> None:
    async with LD2410Simulator(report_hz=100) as radar:
        host = RawHost(radar.path)
        try:
            radar.set_target(TargetState.MOVING, 200, 80)
            await host.command(EnableConfiguration())
            await host.command(EnableEngineering())
            await host.command(EndConfiguration())
            report = await host.report()
            assert report.engineering is not None
            assert report.engineering.moving_energies[200 // 75] == 80
            await host.command(EnableConfiguration())
            await host.command(CloseEngineering())
            await host.command(EndConfiguration())
            assert (await host.report()).engineering is None
        finally:
            host.close()


async def test_factory_reset_restores_defaults_and_restart_leaves_config_mode() -> None:
    async with LD2410Simulator(report_hz=100) as radar:
        host = RawHost(radar.path)
        try:
            await host.command(EnableConfiguration())
            await host.command(SetMaxGates(3, 3, 60))
            await host.command(FactoryReset())
            assert (radar.state.max_moving_gate, radar.state.unmanned_s) == (8, 5)
            await host.command(Restart())
            await host.report()  # reports resume once the radar has restarted
            assert not radar.state.config_mode
        finally:
            host.close()


async def test_fault_knobs_produce_rejects_and_the_stream_recovers() -> None:
    async with LD2410Simulator(report_hz=100) as radar:
        host = RawHost(radar.path)
        try:
            await host.report()
            radar.fault.garbage_before_next = b"junk"
            radar.fault.corrupt_next = 1
            await host.report()
            radar.fault.truncate_next = 1
            reasons = host.decoder.stats.by_reason
            # Good reports already in the pty's buffer come first on a busy machine: read
            # on (bounded) until the faulty frames have reached the decoder.
            for _ in range(500):
                await host.report()
                if reasons["garbage"] >= 1 and reasons["bad_footer"] >= 2:
                    break
            assert reasons["garbage"] >= 1 and reasons["bad_footer"] >= 2, dict(reasons)
        finally:
            host.close()


async def test_close_removes_the_pty() -> None:
    radar = LD2410Simulator()
    await radar.start()
    path = radar.path
    assert os.path.exists(path)
    await radar.close()
    assert not radar.running
    assert not os.path.exists(path)
