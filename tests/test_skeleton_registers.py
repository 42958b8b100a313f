"""Register map v1: decoding, encoding, wrap-around helpers and overrides."""

import pytest

from drivers.registers import (
    DEFAULT_MAP,
    HANDLE_FORCE_NOT_FITTED,
    Status,
    to_signed32,
    wrap_delta16,
    wrap_delta32,
)
from drivers.sample import BoardCommand, BoardSample, BoardSettings


def test_int32_is_high_word_first_and_signed() -> None:
    block = DEFAULT_MAP.encode_inputs({"encoder_count": -2})
    assert block[0:2] == [0xFFFF, 0xFFFE]
    assert DEFAULT_MAP.decode_inputs(block)["encoder_count"] == -2
    block = DEFAULT_MAP.encode_inputs({"encoder_count": 0x12345678})
    assert block[0:2] == [0x1234, 0x5678]


def test_every_input_field_round_trips() -> None:
    raw = {"encoder_count": -123456789, "board_time_ms": 65535, "brake_current_ma": 2999,
           "status": 0x7F, "board_temp_c": -105, "supply_mv": 24012, "heart_rate_bpm": 181,
           "handle_force_n": -320, "fault_code": 3, "fw_version": 0x0102}
    assert DEFAULT_MAP.decode_inputs(DEFAULT_MAP.encode_inputs(raw)) == raw


def test_sample_decodes_units_and_every_status_bit() -> None:
    raw = DEFAULT_MAP.decode_inputs(DEFAULT_MAP.encode_inputs({
        "status": 0b1111111, "board_temp_c": 352, "heart_rate_bpm": 0,
        "handle_force_n": HANDLE_FORCE_NOT_FITTED, "fw_version": 0x0203}))
    sample = BoardSample.from_raw(raw)
    assert sample.board_temp_c == pytest.approx(35.2)
    assert sample.heart_rate_bpm is None
    assert sample.handle_force_n is None
    assert sample.fw_version_text == "2.3"
    assert set(sample.status_names()) == {
        "estop", "brake_fault", "over_temperature", "watchdog_tripped", "under_voltage",
        "safety_key_removed", "brake_enabled"}
    assert Status.WATCHDOG_TRIPPED in sample.status


@pytest.mark.parametrize(("new", "old", "delta"), [
    (5, 2**32 - 5, 10),          # forward across the int32 wrap
    (2**32 - 5, 5, -10),         # backward across it
    (to_signed32(0x80000002), 0x7FFFFFFE, 4),  # across the signed boundary
])
def test_encoder_delta_across_wrap(new: int, old: int, delta: int) -> None:
    assert wrap_delta32(new, old) == delta


def test_board_clock_delta_across_wrap() -> None:
    assert wrap_delta16(3, 65530) == 9
    assert wrap_delta16(100, 90) == 10


def test_overrides_move_fields_and_reject_unknown_names() -> None:
    moved = DEFAULT_MAP.with_overrides({"heart_rate_bpm": 20}, mirror_base=200, device_id=7)
    assert moved.field("heart_rate_bpm").address == 20
    assert moved.mirror_base == 200 and moved.device_id == 7
    with pytest.raises(ValueError, match="unknown register name"):
        DEFAULT_MAP.with_overrides({"heartrate": 20})


def test_command_refuses_brake_without_watchdog_and_out_of_range_setpoint() -> None:
    with pytest.raises(ValueError, match="watchdog"):
        BoardCommand(100, brake_enable=True, watchdog_enable=False)
    with pytest.raises(ValueError, match="outside"):
        BoardCommand(3001, True, True)
    assert BoardCommand(3000, True, True, fault_reset=True).registers() == [3000, 0b111]
    with pytest.raises(ValueError):
        BoardSettings(watchdog_ms=5)
