"""millctl against the reference firmware on a simulated ATmega328P (board-sim), over RTU.

Real time: each test runs the harness and `millctl run` for a few seconds of wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from firmware_helpers import SIM_RATE_HZ, TruthLog, board_sim, make, millctl_run

from controller.settings.machine import MachineConfig

# One firmware build tree and one simavr at a time: these run on one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("firmware")
CONFIG = MachineConfig()
LEVEL = 3
LEVEL_MA = CONFIG.levels.current_ma[LEVEL]
#: The session ends after the stop ramp (the level's current down to 0 at the slew limit).
STOP_RAMP_S = LEVEL_MA / CONFIG.safety.slew_ma_per_s
SAFE_MA = CONFIG.safety.safe_brake_ma
#: The harness's coil model has noise of +-3 mA and the firmware's ADC a 4.9 mA step.
COIL_TOLERANCE_MA = 40.0


@pytest.fixture(scope="module", autouse=True)
def built() -> Iterator[None]:
    result = make("sim")
    assert result.returncode == 0, result.stdout + result.stderr
    yield


@pytest.mark.realtime
def test_millctl_keeps_its_rate_and_reads_true_distance(tmp_path: Path) -> None:
    with board_sim(tmp_path) as (link, truth_path):
        report = millctl_run(tmp_path, link, 8.0, "--mode", "level", "--target", str(LEVEL))
    truth = TruthLog.read(truth_path)
    loop = report["loop"]
    assert loop["rate_hz"] >= 0.99 * SIM_RATE_HZ, loop
    assert loop["transactions_per_cycle"] == 1.0  # function 23: one exchange per cycle
    # A shared 2-core machine can delay one answer past the 50 ms timeout; more is a fault.
    assert report["board"]["link_errors"] <= 2
    start_ms, end_ms = report["board"]["session_board_ms"]
    true_m = truth.distance_between(start_ms / 1000.0, end_ms / 1000.0)
    assert true_m > 20.0
    assert report["session"]["distance_m"] == pytest.approx(true_m, rel=0.005)
    # The brake follows the commanded level: the coil current at the end is the level's.
    assert truth.at(end_ms / 1000.0 - STOP_RAMP_S - 0.05)["coil_ma"] == pytest.approx(LEVEL_MA, abs=COIL_TOLERANCE_MA)
    assert truth.rows[-1]["de_errors"] == 0, "the firmware sent with the RS-485 driver off"
    assert max(r["lag_ms"] for r in truth.rows) < 200.0, "the simulation fell behind real time"


def test_a_2s_silent_link_trips_the_firmware_watchdog_and_millctl_rearms_it(tmp_path: Path) -> None:
    cut_at_s, cut_for_s = 5.0, 2.0
    with board_sim(tmp_path, "--mute-at", f"{cut_at_s}:{cut_for_s}") as (link, truth_path):
        report = millctl_run(tmp_path, link, 9.0, "--mode", "level", "--target", str(LEVEL))
    truth = TruthLog.read(truth_path)
    codes = [f["code"] for f in report["faults"]]
    assert "link_lost" in codes and "watchdog_tripped" in codes, report["faults"]
    # While nobody commanded it, the board held the safe brake on its own.
    watchdog_s = CONFIG.safety.watchdog_cycles / SIM_RATE_HZ
    held = truth.between(cut_at_s + watchdog_s + 0.3, cut_at_s + cut_for_s)
    assert held and all(abs(r["coil_ma"] - SAFE_MA) < COIL_TOLERANCE_MA for r in held)
    before = truth.between(cut_at_s - 0.5, cut_at_s)
    assert before and all(abs(r["coil_ma"] - LEVEL_MA) < COIL_TOLERANCE_MA for r in before)
    # ...and control came back: at the end the coil carries the level's current again.
    _start_ms, end_ms = report["board"]["session_board_ms"]
    assert end_ms / 1000.0 > cut_at_s + cut_for_s + 1.0
    assert truth.at(end_ms / 1000.0 - STOP_RAMP_S - 0.05)["coil_ma"] == pytest.approx(LEVEL_MA, abs=COIL_TOLERANCE_MA)
    lost = next(f for f in report["faults"] if f["code"] == "link_lost")
    assert "ended_t_s" in lost, "the link never came back"


def test_the_estop_is_reported_and_the_hardware_loop_cuts_the_coil(tmp_path: Path) -> None:
    press_at_s, press_for_s = 4.0, 1.5
    with board_sim(tmp_path, "--estop-at", f"{press_at_s}:{press_for_s}") as (link, truth_path):
        report = millctl_run(tmp_path, link, 7.0, "--mode", "level", "--target", str(LEVEL))
    truth = TruthLog.read(truth_path)
    estop = [f for f in report["faults"] if f["code"] == "estop"]
    assert estop, report["faults"]
    pressed = truth.between(press_at_s + 0.3, press_at_s + press_for_s)
    assert pressed and all(r["estop"] for r in pressed)
    assert all(r["coil_ma"] < 5.0 for r in pressed)  # no current through an open loop
    # The firmware itself commands the safe brake (its duty), whatever the loop does.
    safe_duty = SAFE_MA / 1000.0 * 6.0 / 24.0
    assert all(r["duty"] > 0.8 * safe_duty for r in pressed)
    # Released: the current comes back through the ramp, with no overshoot from a wound-up trim.
    after = truth.between(press_at_s + press_for_s, truth.rows[-1]["t_s"])
    assert after and max(r["coil_ma"] for r in after) < max(SAFE_MA, LEVEL_MA) + COIL_TOLERANCE_MA


def test_killing_millctls_core_leaves_the_firmware_holding_the_safe_brake(tmp_path: Path) -> None:
    import subprocess
    import time

    from core_helpers import kill_core
    from firmware_helpers import realtime, write_config
    from skeleton_helpers import MILLCTL, cli_env

    with board_sim(tmp_path) as (link, truth_path):
        (tmp_path / "data").mkdir()
        err_path = tmp_path / "millctl.err"  # what millctl said, for a failure's message
        with err_path.open("wb") as err:
            proc = subprocess.Popen([*realtime(10), *MILLCTL, "run", "--config", str(write_config(tmp_path)),
                                     "--board", f"serial://{link}?baud=115200", "--duration", "30", "--no-web",
                                     "--mode", "level", "--target", str(LEVEL)],
                                    stdout=subprocess.DEVNULL, stderr=err, env=cli_env(tmp_path / "data"))
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                rows = TruthLog.read(truth_path).rows
                if len(rows) > 50 and all(abs(r["coil_ma"] - LEVEL_MA) < COIL_TOLERANCE_MA for r in rows[-50:]):
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the brake never reached the level's current; millctl said:\n"
                            + err_path.read_text(errors="replace")[-3000:])
        finally:
            # The core process killed, no clean exit: nothing releases the brake (killing millctl
            # itself would not do: its core then ramps the brake down, tests/test_core_process.py).
            kill_core(proc.pid)
            assert proc.wait() == 3  # millctl says its core died, and exits
        killed_at_s = TruthLog.read(truth_path).rows[-1]["t_s"]
        time.sleep(1.5)
    truth = TruthLog.read(truth_path)
    watchdog_s = CONFIG.safety.watchdog_cycles / SIM_RATE_HZ
    held = truth.between(killed_at_s + watchdog_s + 0.3, killed_at_s + 1.4)
    assert held and all(abs(r["coil_ma"] - SAFE_MA) < COIL_TOLERANCE_MA for r in held)
