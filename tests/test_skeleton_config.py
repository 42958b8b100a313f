"""A bad config file stops the controller with an error naming the file, field and limits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from skeleton_helpers import MILLCTL, cli_env

from controller.settings.machine import ConfigError, MachineConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "machine.toml"
    path.write_text(text)
    return path


def test_packaged_default_config_is_valid() -> None:
    config = load_config()
    assert config == MachineConfig()
    assert config.watchdog_ms == 200  # 20 cycles at 100 Hz


@pytest.mark.parametrize(("text", "expected"), [
    ("[safety]\nmax_current_ma = 5000\n", "safety.max_current_ma: Input should be less than or equal to 3000"),
    ("[loop]\nrate_hz = 5\n", "loop.rate_hz: Input should be greater than or equal to 10"),
    ("[safety]\nsafe_brake_ma = 2500\nmax_current_ma = 2000\n", "must not exceed max_current_ma"),
    ("[board]\nspeed = 3\n", "board.speed: Extra inputs are not permitted"),
    ("[board.registers]\nheartrate = 7\n", "unknown register name(s) ['heartrate']"),
    ("[levels]\ncurrent_ma = [0, 100]\n", "levels.current_ma: List should have at least 11 items"),
    ("[loop\nrate_hz = 100\n", "not valid TOML"),
])
def test_bad_config_names_file_field_and_what_is_allowed(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_controller_does_not_start_with_a_bad_config(tmp_path: Path) -> None:
    path = write(tmp_path, "[safety]\nslew_ma_per_s = -1\n")
    proc = subprocess.run([*MILLCTL, "run", "--config", str(path), "--duration", "1", "--json"],
                          capture_output=True, text=True, env=cli_env(tmp_path), timeout=60)
    assert proc.returncode == 2
    assert "safety.slew_ma_per_s" in proc.stderr and proc.stdout == ""


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(("rate_hz", "watchdog_ms"), [(50, 400), (100, 200), (250, 100), (500, 100)])
def test_watchdog_time_follows_the_loop_rate_with_a_floor(rate_hz: float, watchdog_ms: int) -> None:
    from controller.settings.machine import LoopSection

    assert MachineConfig(loop=LoopSection(rate_hz=rate_hz)).watchdog_ms == watchdog_ms
