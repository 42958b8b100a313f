"""The board emulator behaves like the board: exceptions, watchdog, fault bits, physics."""

import pytest

from drivers.clock import VirtualClock
from drivers.registers import DEFAULT_MAP, Control, FaultCode, Status
from simulator.athlete import parse_profile
from simulator.emulator import ILLEGAL_ADDRESS, ILLEGAL_VALUE, BoardEmulator, RegisterError
from simulator.machine import MachineParams, brake_force_n


def make(runner: str = "idle", **kw: object) -> tuple[VirtualClock, BoardEmulator]:
    clock = VirtualClock()
    return clock, BoardEmulator(clock, parse_profile(runner), **kw)  # type: ignore[arg-type]


def test_setpoint_above_3000_is_illegal_value_and_changes_nothing() -> None:
    _, emu = make()
    emu.write_holding_registers(0, [1000, 0])
    with pytest.raises(RegisterError) as err:
        emu.write_holding_registers(0, [3001, int(Control.BRAKE_ENABLE)])
    assert err.value.exception_code == ILLEGAL_VALUE
    assert emu.setpoint_ma == 1000 and emu.control == Control(0)


@pytest.mark.parametrize("address", [5, 50, 100, 110])
def test_writes_to_read_only_or_unknown_addresses_are_illegal_address(address: int) -> None:
    _, emu = make()
    with pytest.raises(RegisterError) as err:
        emu.write_holding_registers(address, [1])
    assert err.value.exception_code == ILLEGAL_ADDRESS


def test_mirror_reads_the_same_block_as_the_input_registers() -> None:
    clock, emu = make("steady:2.0")
    clock.advance(5.0)
    inputs = emu.read_input_registers(0, 11)
    mirror = emu.read_holding_registers(100, 11)
    # same instant: everything but the noisy analogue readings agrees
    for i in (0, 1, 2, 4, 5, 9, 10):
        assert inputs[i] == mirror[i]
    with pytest.raises(RegisterError):
        emu.read_input_registers(5, 10)  # past the end of the map


def test_watchdog_trips_without_writes_applies_safe_brake_and_fault_reset_clears() -> None:
    clock, emu = make("steady:3.0")
    emu.write_holding_registers(2, [100, 1500])  # watchdog_ms, safe_brake_ma
    emu.write_holding_registers(0, [0, int(Control.WATCHDOG_ENABLE | Control.BRAKE_ENABLE)])
    clock.advance(0.09)
    emu.advance()
    assert not emu.watchdog_tripped
    clock.advance(0.02)
    emu.advance()
    assert emu.watchdog_tripped and emu.fault_code == FaultCode.WATCHDOG
    assert emu.coil_target_ma() == 1500
    assert emu.status() & Status.WATCHDOG_TRIPPED
    emu.write_holding_registers(1, [int(Control.FAULT_RESET | Control.WATCHDOG_ENABLE)])
    assert not emu.watchdog_tripped
    assert emu.fault_code == FaultCode.NONE
    assert not emu.control & Control.FAULT_RESET  # self-clearing


def test_watchdog_stays_quiet_while_fed() -> None:
    clock, emu = make()
    emu.write_holding_registers(2, [50])
    for _ in range(100):
        emu.write_holding_registers(0, [200, int(Control.WATCHDOG_ENABLE | Control.BRAKE_ENABLE)])
        clock.advance(0.04)
        emu.advance()
    assert not emu.watchdog_tripped


def test_eddy_brake_has_no_force_at_standstill_and_peaks_at_critical_speed() -> None:
    m = MachineParams()
    assert brake_force_n(m, 3000, 0.0) == 0.0
    assert brake_force_n(m, 3000, 1.5) == pytest.approx(600.0)
    assert brake_force_n(m, 3000, 3.0) < brake_force_n(m, 3000, 1.5)
    assert brake_force_n(m, 1500, 1.5) == pytest.approx(150.0)  # ∝ current²


def test_coil_current_lags_setpoint_and_respects_the_ramp_limit() -> None:
    clock, emu = make()
    emu.write_holding_registers(4, [10000])  # ramp 10 A/s: 3 A takes ≥ 0.3 s
    emu.write_holding_registers(0, [3000, int(Control.BRAKE_ENABLE | Control.WATCHDOG_ENABLE)])
    clock.advance(0.1)
    emu.advance()
    assert emu.coil.current_ma == pytest.approx(1000, rel=0.02)
    for _ in range(10):
        emu.write_holding_registers(0, [3000, int(Control.BRAKE_ENABLE | Control.WATCHDOG_ENABLE)])
        clock.advance(0.05)
        emu.advance()
    assert emu.coil.current_ma == pytest.approx(3000, rel=0.01)


def test_steady_runner_reaches_target_speed_with_stride_pulsation() -> None:
    clock, emu = make("steady:3.0")
    speeds = []
    for _ in range(1000):
        clock.advance(0.01)
        emu.advance()
        speeds.append(emu.belt.speed_mps)
    steady = speeds[500:]
    assert sum(steady) / len(steady) == pytest.approx(3.0, rel=0.03)
    assert max(steady) - min(steady) > 0.005  # strides show: the simulator does not snap


def test_backward_runner_moves_the_belt_backward() -> None:
    clock, emu = make("steady:-1.5")
    clock.advance(10.0)
    emu.advance()
    assert emu.belt.speed_mps == pytest.approx(-1.5, rel=0.05)
    assert emu.truth.backward_m > 8 and emu.truth.forward_m < 0.1


def test_encoder_counts_are_quantised_and_wrap_at_int32() -> None:
    clock, emu = make("steady:3.0", encoder_offset_counts=2**31 - 1000)
    clock.advance(3.0)
    emu.advance()
    raw = emu.input_values()["encoder_count"]
    block = DEFAULT_MAP.encode_inputs({"encoder_count": raw})
    decoded = DEFAULT_MAP.decode_inputs(block)["encoder_count"]
    assert decoded < 0  # wrapped past 2^31 - 1 into negative int32


def test_hardware_seed_perturbs_constants_within_15_percent() -> None:
    ref = MachineParams()
    other = ref.perturbed(7)
    assert other != ref
    for name in ("brake_force_max_n", "belt_mass_kg", "roller_diameter_mm", "coulomb_friction_n"):
        ratio = getattr(other, name) / getattr(ref, name)
        assert 0.85 <= ratio <= 1.15
    assert ref.perturbed(0) == ref
