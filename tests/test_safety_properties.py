"""Property tests: whatever modes, targets, commands and faults arrive, the setpoint stays within
its limits, never changes faster than the slew limit, and the watchdog is armed whenever the
brake is enabled."""

from __future__ import annotations

import itertools
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safety_helpers import run_sim

from controller.core.commands import Pause, Resume, SetMode, Start, Stop
from controller.core.guard import SetpointGuard
from controller.settings.machine import MachineConfig, SafetySection
from simulator.faults import FaultKind, FaultSpec

PERIOD_S = 0.01


@given(
    max_ma=st.integers(0, 3000),
    slew=st.floats(1.0, 100_000.0),
    steps=st.lists(st.tuples(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                       st.integers(-10**6, 10**6).map(float)),
                             st.floats(0.0, 0.5)), min_size=1, max_size=200),
)
def test_guard_output_stays_within_limits_and_slew(max_ma: int, slew: float,
                                                  steps: list[tuple[float, float]]) -> None:
    guard = SetpointGuard(max_ma, slew)
    previous = 0
    for requested, dt in steps:
        out = guard.next(requested, dt)
        assert 0 <= out <= max_ma
        # rounding to whole mA may add at most 1 mA to the slewed step
        assert abs(out - previous) <= slew * dt + 1.0
        previous = out


COMMANDS = [Start(), Pause(), Resume(), Stop(), SetMode(mode="free"), SetMode(mode="level", target=0.0),
            SetMode(mode="level", target=10.0), SetMode(mode="level", target=5.5),
            SetMode(mode="level", target=-3.0), SetMode(mode="level", target=1e9),
            SetMode(mode="level", target=math.nan), SetMode(mode="rocket", target=1.0),
            SetMode(mode="erg", target=250.0), SetMode(mode="erg", target=5000.0),
            SetMode(mode="speed-cap", target=1.5), SetMode(mode="sled", target=100.0),
            SetMode(mode="parachute", target=3.0)]
FAULT_KINDS = [k for k in FaultKind if k != FaultKind.REBOOT]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[MachineConfig, list[str], list[tuple[float, int]], str]:
    max_ma = draw(st.integers(300, 3000))
    safety = SafetySection(max_current_ma=max_ma, slew_ma_per_s=draw(st.floats(200.0, 50_000.0)),
                           safe_brake_ma=draw(st.integers(0, max_ma)),
                           watchdog_cycles=draw(st.integers(3, 40)))
    faults = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from([*FAULT_KINDS, FaultKind.REBOOT]))
        at = draw(st.floats(0.2, 3.5))
        duration = None if kind == FaultKind.REBOOT else draw(st.floats(0.05, 1.5))
        faults.append(str(FaultSpec(kind, round(at, 2), None if duration is None else round(duration, 2))))
    commands = draw(st.lists(st.tuples(st.floats(0.0, 4.0), st.integers(0, len(COMMANDS) - 1)), max_size=12))
    runner = draw(st.sampled_from(["steady:3.0", "steady:-2.5", "intervals", "sweep", "idle"]))
    return MachineConfig(safety=safety), faults, commands, runner


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
async def test_no_sequence_of_modes_commands_and_faults_breaks_the_setpoint_rules(
        scenario: tuple[MachineConfig, list[str], list[tuple[float, int]], str]) -> None:
    config, faults, commands, runner = scenario
    actions = [(t, lambda loop, c=COMMANDS[i]: loop.execute(c)) for t, i in commands]
    loop, _board, rec = await run_sim(config, {"runner": runner, "faults": faults}, 4.0, actions)
    limit = config.safety.max_current_ma
    slew_step = config.safety.slew_ma_per_s * loop.period_s + 1.0
    assert rec.commands, "the loop never wrote to the board"
    for _t, command in rec.commands:
        assert 0 <= command.brake_setpoint_ma <= limit
        assert not command.brake_enable or command.watchdog_enable
    assert rec.unguarded_brake == [], f"brake enabled without the configured watchdog at {rec.unguarded_brake}"
    for ((_t0, a), (_t1, b)), in_charge in zip(itertools.pairwise(rec.commands), rec.board_in_charge[1:],
                                              strict=True):
        # Exempt: taking over from the board while it holds the coil itself (after a watchdog trip
        # or a reboot), and the brake being switched off as a fault response.
        if in_charge or not a.brake_enable or not b.brake_enable:
            continue
        assert abs(b.brake_setpoint_ma - a.brake_setpoint_ma) <= slew_step, (a, b)
