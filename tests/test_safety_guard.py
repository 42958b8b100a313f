"""The one maker of board commands, and the coil-follow monitor, on their own."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from controller.core.guard import BrakeRequest, SetpointGuard
from controller.core.safety.coil import CoilFollowMonitor, follow_window_s

PERIOD_S = 0.01

requests = st.builds(
    BrakeRequest,
    current_ma=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6).map(float)),
    brake_enable=st.booleans(), watchdog_enable=st.booleans(), fault_reset=st.booleans(),
    coil_ma=st.one_of(st.none(), st.floats(-1e4, 1e4)))


@given(max_ma=st.integers(0, 3000), slew=st.floats(1.0, 100_000.0), seq=st.lists(requests, min_size=1, max_size=100))
def test_every_command_is_clamped_slewed_and_never_brakes_without_the_watchdog(
        max_ma: int, slew: float, seq: list[BrakeRequest]) -> None:
    guard = SetpointGuard(max_ma, slew)
    previous = 0.0
    for request in seq:
        command = guard.command(request, PERIOD_S)
        assert 0 <= command.brake_setpoint_ma <= max_ma
        assert not command.brake_enable or command.watchdog_enable
        assert command.fault_reset == request.fault_reset
        if not request.brake_enable:
            assert command.brake_setpoint_ma == 0 and not command.brake_enable
            previous = 0.0
            continue
        start = previous if request.coil_ma is None else min(max(0.0, request.coil_ma), max_ma)
        assert abs(command.brake_setpoint_ma - start) <= slew * PERIOD_S + 1.0
        previous = guard.setpoint_ma


def test_taking_over_from_the_board_starts_at_the_measured_coil_current() -> None:
    guard = SetpointGuard(3000, 6000)
    for _ in range(30):
        guard.command(BrakeRequest(2100.0), PERIOD_S)
    assert guard.setpoint_ma == 1800.0
    # the board tripped and holds 1200 mA: continue from there, not from 1800
    command = guard.command(BrakeRequest(2100.0, coil_ma=1195.0, fault_reset=True), PERIOD_S)
    assert command.brake_setpoint_ma == 1255 and command.fault_reset
    assert guard.command(BrakeRequest(math.nan), PERIOD_S).brake_setpoint_ma == 1195  # NaN: no brake wanted


def test_a_coil_that_follows_a_ramp_with_its_lag_is_not_a_fault() -> None:
    window = follow_window_s(0.03, 3000, 8000)
    monitor = CoilFollowMonitor(250, window, hold_s=0.09)
    coil = 0.0
    for i in range(500):
        setpoint = min(2100, 60 * i) if i < 250 else max(0, 2100 - 60 * (i - 250))
        assert monitor.observe(i * PERIOD_S, setpoint, round(coil)) is None
        coil += (setpoint - coil) * PERIOD_S / 0.03 if PERIOD_S < 0.03 else setpoint - coil


def test_a_coil_held_elsewhere_is_reported_after_the_hold_time() -> None:
    monitor = CoilFollowMonitor(250, 0.5, hold_s=0.09)
    causes = [monitor.observe(i * PERIOD_S, 600, 600 if i < 100 else 3000) for i in range(130)]
    first = next(i for i, c in enumerate(causes) if c is not None)
    assert first == 109  # 0.09 s after it departed at 1.00 s
    assert "another master on the bus" in str(causes[first])
    monitor.reset()
    assert monitor.observe(2.0, 600, 3000) is None  # just took over: the coil may still be on its way
