"""The fast paths of the control cycle and the simulator give exactly what the plain
definitions give: the sliding-window band of the coil monitor, the register codec's
precompiled layout, the status table, the control bits, and the athlete's inlined step.
(Speed is measured in bench/bench_perf.py, never asserted here.)"""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.safety.coil import CoilFollowMonitor
from drivers.registers import DEFAULT_MAP, Control, Status, to_signed16, to_signed32
from drivers.sample import BoardCommand, BoardSample
from simulator.athlete import STANDING_MPS, Athlete, AthleteParams, parse_profile


class BruteForceCoilBand:
    """The coil monitor's rule written plainly: min and max over every setpoint in the window."""

    def __init__(self, tolerance_ma: float, window_s: float, hold_s: float) -> None:
        self.tolerance_ma, self.window_s, self.hold_s = tolerance_ma, window_s, hold_s
        self.written: list[tuple[float, int]] = []
        self.since_s: float | None = None
        self.departed_s: float | None = None

    def observe(self, now_s: float, written_ma: int, measured_ma: int) -> bool:
        if self.since_s is None:
            self.since_s = now_s
        self.written.append((now_s, written_ma))
        self.written = [(t, ma) for t, ma in self.written if t >= now_s - self.window_s - 1e-9]
        if now_s - self.since_s < self.window_s - 1e-9:
            return False
        low, high = min(ma for _, ma in self.written), max(ma for _, ma in self.written)
        if max(low - measured_ma, measured_ma - high) <= self.tolerance_ma:
            self.departed_s = None
            return False
        if self.departed_s is None:
            self.departed_s = now_s
        return now_s - self.departed_s >= self.hold_s - 1e-9


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 3400), st.sampled_from([0.005, 0.01, 0.02, 0.3])),
                min_size=1, max_size=300))
def test_coil_band_from_monotonic_queues_is_the_min_and_max_of_the_window(
        steps: list[tuple[int, int, float]]) -> None:
    fast, plain = CoilFollowMonitor(250, 0.495, 0.1), BruteForceCoilBand(250, 0.495, 0.1)
    now_s = 0.0
    for written_ma, measured_ma, dt_s in steps:
        now_s += dt_s
        departed = fast.observe(now_s, written_ma, measured_ma)
        assert (departed is not None) == plain.observe(now_s, written_ma, measured_ma)
        if departed is not None:
            fast.reset()
            plain.__init__(250, 0.495, 0.1)  # type: ignore[misc]


def test_coil_band_names_the_window_it_saw() -> None:
    monitor = CoilFollowMonitor(250, 0.5, 0.0)
    cause = None
    for i in range(200):  # setpoints 1000..1099 written twice over, the coil reads 0: it does not follow
        cause = monitor.observe(i * 0.01, 1000 + (i % 100), 0) or cause
    # The last 0.5 s are cycles 149..199: setpoints 1049..1099, the older ones have left the band.
    assert cause is not None and "1049..1099 mA" in cause


def plain_decode(block: list[int]) -> dict[str, int]:
    out = {}
    for f in DEFAULT_MAP.input_fields:
        i = f.address
        if f.kind == "int32":
            out[f.name] = to_signed32((block[i] << 16) | block[i + 1])
        elif f.kind == "int16":
            out[f.name] = to_signed16(block[i])
        else:
            out[f.name] = block[i]
    return out


@given(st.lists(st.integers(0, 0xFFFF), min_size=11, max_size=11))
def test_register_block_decodes_as_field_by_field(block: list[int]) -> None:
    decoded = DEFAULT_MAP.decode_inputs(block)
    assert decoded == plain_decode(block)
    assert DEFAULT_MAP.encode_inputs(decoded) == block


def test_a_longer_block_decodes_and_a_short_one_is_refused() -> None:
    block = [0, 5, 7, 0, 0, 0, 0, 0, 0, 0, 0, 99]
    assert DEFAULT_MAP.decode_inputs(block, base=0) == plain_decode(block)
    try:
        DEFAULT_MAP.decode_inputs(block[:5])
    except ValueError as exc:
        assert "does not cover" in str(exc)
    else:
        raise AssertionError("a short block was decoded")


def test_every_status_value_decodes_to_its_flag() -> None:
    raw = {f.name: 0 for f in DEFAULT_MAP.input_fields}
    for bits in range(0x100):
        sample = BoardSample.from_raw({**raw, "status": bits})
        assert sample.status == Status(bits & 0x7F) and isinstance(sample.status, Status)


def test_control_bits_are_the_flags_sum() -> None:
    for enable in (False, True):
        for watchdog in (enable, True):
            for reset in (False, True):
                command = BoardCommand(100, brake_enable=enable, watchdog_enable=watchdog, fault_reset=reset)
                expected = ((Control.BRAKE_ENABLE if enable else Control(0))
                            | (Control.WATCHDOG_ENABLE if watchdog else Control(0))
                            | (Control.FAULT_RESET if reset else Control(0)))
                assert command.control_bits == int(expected)


def reference_step(a: Athlete, t_s: float, dt_s: float, speed_mps: float) -> float:
    """Athlete.step as first written: capacity_n and _relax_heart as calls, min/max as calls."""
    p = a.params
    target = a.profile.plan(t_s)
    direction = 1.0 if (target > 0 or (target == 0 and speed_mps >= 0)) else -1.0
    error = direction * (target - speed_mps)
    cap = a.capacity_n(speed_mps, direction)
    resist = p.resist_fraction * p.force0_n
    a._integral_n = max(-resist, min(cap, a._integral_n + p.speed_integral_n_per_m * error * dt_s))
    drive = max(-resist, min(cap, p.speed_gain_n_per_mps * error + a._integral_n))
    if abs(target) < STANDING_MPS:
        a._step_rate_hz = 0.0
        a.force_n = direction * drive
        a._relax_heart(abs(a.force_n * speed_mps), dt_s)
        return a.force_n
    if a._step_rate_hz == 0.0 or direction != a._step_direction:
        a._open_step(t_s, target, direction, speed_mps, first=True)
    phase = a._stride_phase + a._step_rate_hz * dt_s
    if phase >= 1.0:
        a._close_step(t_s, speed_mps)
        a._open_step(t_s, target, direction, speed_mps, first=False)
        phase = a._stride_phase + a._step_rate_hz * dt_s
    a._stride_phase = phase
    pulse = a._push * (1.0 - p.stride_amplitude * math.cos(2.0 * math.pi * phase))
    a.force_n = direction * drive * pulse
    a._step_impulse_ns += direction * a.force_n * dt_s
    a._step_moved_m += speed_mps * dt_s
    fatigue = a.profile.fatigue_per_s or p.fatigue_per_s
    if fatigue and drive > 0:
        a.strength = max(p.min_strength, a.strength - fatigue * dt_s * drive / p.force0_n)
    a._relax_heart(abs(a.force_n * speed_mps), dt_s)
    return a.force_n


def test_the_athletes_step_is_bit_for_bit_the_reference_step() -> None:
    for spec in ("steady:3.0", "tiring:4.0:0.01", "intervals", "sweep", "plan:5@2,5@-1.5,5@0"):
        fast = Athlete(AthleteParams(), parse_profile(spec), random.Random(3))
        plain = Athlete(AthleteParams(), parse_profile(spec), random.Random(3))
        speeds = random.Random(7)
        t = 0.0
        for _ in range(20_000):
            t += 0.001
            v = speeds.uniform(-4.0, 6.0)
            assert fast.step(t, 0.001, v) == reference_step(plain, t, 0.001, v)
        assert (fast.strength, fast.heart_rate_bpm, fast._integral_n) == (
            plain.strength, plain.heart_rate_bpm, plain._integral_n)


def test_totals_travel_with_two_window_entries_and_read_the_same() -> None:
    """The core process pickles the totals with every snapshot: the copy keeps the power
    window's ends only, and every figure a reader sees is the same."""
    import pickle

    from controller.core.brake_model import BrakeModel
    from controller.core.estimator import Motion
    from controller.core.session_totals import SessionTotals

    totals, model = SessionTotals(), BrakeModel()
    for i in range(500):
        v = 3.0 + 0.5 * math.sin(i / 7)
        totals.add(Motion(speed_mps=v, accel_mps2=0.1, moved_m=v * 0.01, board_dt_s=0.01, board_time_s=i * 0.01),
                   800, model, 0.01)
    copy = pickle.loads(pickle.dumps(totals))
    assert len(copy._window) == 2 and len(totals._window) > 2
    assert copy.power_3s_w == totals.power_3s_w and copy.as_json() == totals.as_json()
