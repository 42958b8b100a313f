"""Each injected machine fault produces its defined response, in `faults` and in the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from safety_helpers import faults_by_code, run_sim

from controller.core.commands import Resume
from controller.core.loop import ControlLoop
from controller.core.safety.faults import POLICIES, FaultLog
from controller.core.session_state import SessionState
from controller.settings.machine import MachineConfig, SafetySection

CONFIG = MachineConfig()
SAFE_MA = CONFIG.safety.safe_brake_ma


def probe(at_s: float, into: dict[str, Any]) -> tuple[float, Any]:
    """An action that remembers the session state and next setpoint at `at_s`."""
    def look(loop: ControlLoop) -> None:
        into["state"] = loop.session.state
        into["setpoint_ma"] = loop._command.brake_setpoint_ma
        into["brake"] = loop._command.brake_enable
        into["coil_ma"] = loop.board.emulator.truth.coil_ma  # type: ignore[attr-defined]
    return at_s, look


def with_log(tmp_path: Path) -> Any:
    def attach(loop: ControlLoop) -> None:
        loop.safety.attach_log(FaultLog(tmp_path))
    return attach


@pytest.mark.parametrize(("spec", "code", "state_after", "level"), [
    ("estop@2s:1.5s", "estop", SessionState.PAUSED, 5.0),
    ("safety-key@2s:1.5s", "safety_key", SessionState.PAUSED, 5.0),
    ("under-voltage@2s:1.5s", "under_voltage", SessionState.PAUSED, 5.0),
    ("over-temp@2s:1.5s", "over_temperature", SessionState.PAUSED, 10.0),
    ("coil-fault@2s:1.5s", "brake_coil", SessionState.FINISHED, 5.0),
])
async def test_machine_fault_gets_its_defined_response_and_is_logged(
        tmp_path: Path, spec: str, code: str, state_after: SessionState, level: float) -> None:
    seen: dict[str, Any] = {}
    loop, _board, rec = await run_sim(CONFIG, {"runner": "steady:3.0", "faults": [spec]}, 5.0,
                                     [probe(3.0, seen)], target=level, prepare=with_log(tmp_path))
    fault = faults_by_code(loop)[code]
    assert 2.0 <= fault["t_s"] <= 2.05
    assert fault["response"] == POLICIES[code].response
    assert fault["state"]["session_state"] == "running" and fault["state"]["speed_mps"] > 1.0
    assert fault["ended_t_s"] == pytest.approx(3.5, abs=0.05)
    assert seen["state"] == state_after
    logged = [e for e in FaultLog(tmp_path).entries() if e.get("code") == code]
    assert len(logged) == 1 and logged[0]["cause"] == fault["cause"] and logged[0]["latched"]
    if code == "brake_coil":
        assert not seen["brake"] and seen["setpoint_ma"] == 0
        # latched: the brake stays off after the coil fault clears, until a technician clears it
        late = [c for t, c in rec.commands if t > 4.0]
        assert late and not any(c.brake_enable for c in late)
        assert FaultLog(tmp_path).brake_inhibited()
    elif code == "over_temperature":
        assert seen["setpoint_ma"] <= SAFE_MA < CONFIG.levels.current_ma[10]
    else:
        # brake to a stop: the setpoint ramps to the safe current, which the board applies too
        assert seen["setpoint_ma"] == SAFE_MA and abs(seen["coil_ma"] - SAFE_MA) < 40


async def test_resume_is_refused_while_estop_is_pressed_and_allowed_after(tmp_path: Path) -> None:
    answers: dict[str, Any] = {}

    def resume_at(key: str) -> Any:
        return lambda loop: answers.__setitem__(key, loop.execute(Resume()))

    _loop, _b, _r = await run_sim(CONFIG, {"runner": "steady:3.0", "faults": ["estop@1s:1s"]}, 3.0,
                                 [(1.5, resume_at("pressed")), (2.5, resume_at("released"))])
    assert not answers["pressed"].ok and "estop" in answers["pressed"].error
    assert answers["released"].ok


async def test_backward_overspeed_is_answered_by_braking() -> None:
    config = MachineConfig(safety=SafetySection(overspeed_backward_mps=3.0))
    late: dict[str, Any] = {}
    loop, _b, rec = await run_sim(config, {"runner": "steady:-4.5"}, 8.0, [(7.9, lambda lp: late.update(
        speed_mps=lp.latest.motion.speed_mps))], mode_name="free", target=None)
    fault = faults_by_code(loop)["overspeed_backward"]
    assert fault["response"] == POLICIES["overspeed_backward"].response
    braking = [c.brake_setpoint_ma for t, c in rec.commands if t > fault["t_s"] + 0.3]
    assert max(braking) >= config.safety.safe_brake_ma  # free mode asks for 0: only the safety net brakes
    assert late["speed_mps"] > -3.6  # held near the limit until the run ended


async def test_forward_limit_is_higher_than_backward() -> None:
    loop, _b, _r = await run_sim(CONFIG, {"runner": "steady:5.0"}, 6.0, mode_name="free", target=None)
    assert "overspeed_forward" not in faults_by_code(loop)  # 5 m/s forward is ordinary running


async def test_board_reboot_is_detected_rearmed_and_invents_no_distance() -> None:
    loop, board, rec = await run_sim(CONFIG, {"runner": "steady:3.0", "faults": ["reboot@2s"]}, 5.0)
    codes = faults_by_code(loop)
    assert "board_reboot" in codes and "link_lost" in codes
    emulator = board.emulator
    assert emulator.watchdog_ms == CONFIG.watchdog_ms and emulator.safe_brake_ma == SAFE_MA
    assert rec.unguarded_brake == []
    truth = emulator.truth.distance_m
    # the 0.3 s the board was offline may be missing, nothing may be added
    assert truth - 1.5 < loop.session.totals.distance_m < truth + 0.05


async def test_encoder_jump_is_a_sensor_fault_not_distance() -> None:
    def glitch(loop: ControlLoop) -> None:
        emulator = loop.board.emulator  # type: ignore[attr-defined]
        emulator._encoder_offset += round(25.0 / emulator.machine.metres_per_count)  # 25 m in one cycle

    loop, board, _r = await run_sim(CONFIG, {"runner": "steady:3.0"}, 4.0, [(2.0, glitch)])
    fault = faults_by_code(loop)["encoder_jump"]
    assert "m in" in fault["cause"] and fault["latched"]
    assert loop.session.totals.distance_m == pytest.approx(board.emulator.truth.distance_m, abs=0.1)
    assert loop.latest is not None and abs(loop.latest.motion.speed_mps - 3.0) < 0.5


async def test_absurd_current_reading_is_a_sensor_fault_and_not_counted() -> None:
    def break_sensor(loop: ControlLoop) -> None:
        loop.board.emulator.coil.measured_ma = lambda: 65535  # type: ignore[attr-defined]

    def fix_sensor(loop: ControlLoop) -> None:
        del loop.board.emulator.coil.measured_ma  # type: ignore[attr-defined]

    loop, _b, _r = await run_sim(CONFIG, {"runner": "steady:3.0"}, 4.0, [(2.0, break_sensor), (2.2, fix_sensor)])
    fault = faults_by_code(loop)["current_implausible"]
    assert "65535" in fault["cause"] and fault["ended_t_s"] == pytest.approx(2.2, abs=0.02)
    assert loop.session.totals.max_power_w < 1500


async def test_a_bug_in_a_mode_does_not_end_the_run_and_holds_the_safe_brake() -> None:
    seen: dict[str, Any] = {}

    def break_mode(loop: ControlLoop) -> None:
        def demand(_inputs: object) -> object:
            raise ZeroDivisionError("mode bug")
        loop.mode.demand = demand  # type: ignore[method-assign]

    def fix_mode(loop: ControlLoop) -> None:
        del loop.mode.demand  # type: ignore[attr-defined]

    loop, board, rec = await run_sim(CONFIG, {"runner": "steady:3.0"}, 4.0,
                                     [(1.0, break_mode), probe(2.0, seen), (2.5, fix_mode)])
    fault = faults_by_code(loop)["internal_error"]
    assert "ZeroDivisionError" in fault["cause"] and fault["ended_t_s"] == pytest.approx(2.5, abs=0.02)
    assert seen["state"] == SessionState.PAUSED and seen["setpoint_ma"] == SAFE_MA
    assert not board.emulator.watchdog_tripped and "watchdog_tripped" not in faults_by_code(loop)
    assert rec.commands[-1][0] > 3.9  # still commanding the board at the end


async def test_exception_replies_are_reported_and_a_persisting_one_is_a_lost_link() -> None:
    loop, _b, _r = await run_sim(CONFIG, {"runner": "steady:3.0",
                                          "faults": ["exception@1s:0.02s", "exception@2s:1s"]}, 4.0)
    exceptions = [f for f in loop.faults if f["code"] == "board_exception"]
    assert len(exceptions) == 2 and "exception 4" in str(exceptions[0]["cause"])
    lost = faults_by_code(loop)["link_lost"]
    assert lost["t_s"] == pytest.approx(2.0 + CONFIG.safety.link_loss_s, abs=0.03)


async def test_garbled_frames_cost_samples_but_not_control() -> None:
    loop, board, rec = await run_sim(CONFIG, {"runner": "steady:3.0", "faults": ["garble@1s:2s"]}, 4.0)
    assert loop.link_errors > 5 and rec.commands[-1][0] > 3.9
    assert "internal_error" not in faults_by_code(loop) and rec.unguarded_brake == []
    assert loop.session.totals.distance_m == pytest.approx(board.emulator.truth.distance_m, rel=0.03)


async def test_a_latched_coil_fault_keeps_the_brake_off_until_a_technician_clears_it(tmp_path: Path) -> None:
    log = FaultLog(tmp_path)
    log.append({"code": "brake_coil", "latched": True, "at": "earlier", "cause": "test"})

    def technician_clears(_loop: ControlLoop) -> None:
        FaultLog(tmp_path).clear("tech")

    loop, _b, rec = await run_sim(CONFIG, {"runner": "steady:3.0"}, 5.0, [(2.0, technician_clears)],
                                  prepare=with_log(tmp_path))
    assert loop.faults[0]["code"] == "brake_coil" and loop.faults[0]["from_log"]
    assert not any(c.brake_enable for t, c in rec.commands if t < 2.0)
    assert all(c.brake_enable for t, c in rec.commands[:-1] if t > 3.1)  # the last one: brake off on exit


async def test_a_lasting_sensor_fault_ramps_the_brake_to_the_safe_current() -> None:
    def break_sensor(loop: ControlLoop) -> None:
        loop.board.emulator.coil.measured_ma = lambda: 65535  # type: ignore[attr-defined]

    loop, _b, rec = await run_sim(CONFIG, {"runner": "steady:3.0"}, 4.0, [(1.5, break_sensor)])
    held = [c.brake_setpoint_ma for t, c in rec.commands if 1.52 < t < 1.98]
    assert len(set(held)) == 1 and held[0] == CONFIG.levels.current_ma[3]  # held, not acted on
    late = [c.brake_setpoint_ma for t, c in rec.commands if 3.0 < t <= 4.0]  # after 4 s: the stop ramp
    assert late and all(s == SAFE_MA for s in late)
    assert faults_by_code(loop)["current_implausible"]["active"]
