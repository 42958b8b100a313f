"""The module profile (config/boards/*.toml) and the composite board's own behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from modules_helpers import METRES_PER_COUNT, serve_modules, write_profile
from skeleton_helpers import free_port

from drivers.board import BoardContext, open_board
from drivers.clock import VirtualClock
from drivers.errors import BoardConfigError
from drivers.modules import ModuleBoard, ModuleProfile
from drivers.registers import Status
from drivers.sample import BoardCommand, BoardSettings

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "boards" / "modules-example.toml"


def profile_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def test_the_example_profile_is_valid_and_scales_the_amplifier_signal() -> None:
    out = ModuleProfile.load(EXAMPLE).output
    assert out.signal_for(0) == 4000
    assert out.signal_for(3000) == 20000
    assert out.signal_for(1500) == 12000
    assert out.signal_for(99999) == 20000  # clamped: never beyond the amplifier's full scale
    assert out.signal_for(-5) == 4000
    assert out.current_for(out.signal_for(720)) == 720


@pytest.mark.parametrize(("text", "expected"), [
    ("bus = [", "not valid TOML"),
    ('bus = "tcp://h:1"\n[counter]\ndevice_id = 2\n', "output"),
    ('bus = "tcp://h:1"\n[counter]\ndevice_id = 2\nbogus = 1\n[output]\ndevice_id = 3\n', "bogus"),
    ('bus = "tcp://h:1"\n[counter]\ndevice_id = 2\n[output]\ndevice_id = 3\nsignal_at_full = 100\n',
     "signal_at_full must be above signal_at_zero"),
    ('bus = "tcp://h:1"\n[counter]\ndevice_id = 2\n[output]\ndevice_id = 3\ncomm_loss_s = 0.3\n',
     "below the module's resolution"),
    ('bus = "tcp://h:1"\n[counter]\ndevice_id = 300\n[output]\ndevice_id = 3\n', "counter.device_id"),
])
def test_a_bad_profile_is_refused_with_the_file_and_the_field(tmp_path: Path, text: str, expected: str) -> None:
    path = profile_text(tmp_path, text)
    with pytest.raises(BoardConfigError) as info:
        ModuleProfile.load(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_a_profile_that_is_not_utf8_or_missing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'bus = "\xff\xfe"\n')
    with pytest.raises(BoardConfigError, match="cannot read"):
        ModuleProfile.load(path)
    with pytest.raises(BoardConfigError, match="cannot read"):
        open_board(f"modules://{tmp_path / 'missing.toml'}")


def test_modules_is_a_known_board_type() -> None:
    with pytest.raises(BoardConfigError, match="modules"):
        open_board("nosuch://x")


async def test_counts_above_16_bits_and_backwards_decode_from_two_registers(tmp_path: Path) -> None:
    port = free_port()
    async with serve_modules(port, speed_mps=-3.0) as rig:
        rig.counter.start_s -= 100.0  # 300 m backwards already: far below -2^16 counts
        board = open_board(f"modules://{write_profile(tmp_path, port, estop=False)}")
        async with board:
            first = await board.read_sample()
            served = rig.counter.reads[-1][1]
            second = await board.read_sample()
    assert first.encoder_count == served
    assert served < -(1 << 16)
    assert second.encoder_count < first.encoder_count  # backwards: counting down
    assert abs(first.encoder_count * METRES_PER_COUNT + 300.0) < 1.0


async def test_settings_arm_each_modules_own_timeout_rounded_up_to_its_units(tmp_path: Path) -> None:
    port = free_port()
    async with serve_modules(port) as rig:
        path = write_profile(tmp_path, port)
        path.write_text(path.read_text().replace("comm_loss_s = 1.0          # the counter's",
                                                 "comm_loss_s = 0.45         # the counter's"))
        board = open_board(f"modules://{path}")
        async with board:
            await board.apply_settings(BoardSettings(safe_brake_ma=900))
            holding = await board.read_holding()
    assert holding["safe_brake_ma"] == 900 and holding["watchdog_ms"] == 1000  # read back from the module
    assert rig.counter.watchdog_units == 5  # 0.45 s in 0.1 s units, never shorter
    assert rig.output.watchdog_s == 1
    assert rig.output.safe_ua == ModuleProfile.load(path).output.signal_for(900)


async def test_a_quiet_host_is_reported_as_a_watchdog_trip_until_a_fault_reset(tmp_path: Path) -> None:
    port = free_port()
    clock = VirtualClock()
    async with serve_modules(port):
        board = open_board(f"modules://{write_profile(tmp_path, port)}", BoardContext(clock=clock))
        assert isinstance(board, ModuleBoard)
        async with board:
            await board.apply_settings(BoardSettings(safe_brake_ma=1200))
            sample = await board.exchange(BoardCommand(700, brake_enable=True, watchdog_enable=True))
            assert sample.status == Status.BRAKE_ENABLED and sample.brake_current_ma == 700
            clock.advance(board.output_safe_after_s + 0.1)
            quiet = await board.read_sample()
            assert quiet.status & Status.WATCHDOG_TRIPPED
            assert quiet.brake_current_ma == 1200  # the module is on its safe value
            still = await board.exchange(BoardCommand(700, brake_enable=True, watchdog_enable=True))
            assert still.status & Status.WATCHDOG_TRIPPED  # latched, as on a board
            reset = await board.exchange(BoardCommand(1200, True, True, fault_reset=True))
            assert not reset.status & Status.WATCHDOG_TRIPPED
            assert board.transactions >= 6
