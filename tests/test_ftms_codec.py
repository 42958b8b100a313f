"""FTMS codec: byte vectors worked out by hand from the FTMS 1.0 specification, round trips,
the flag combinations the controller emits, and malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.services.ftms.capabilities import capabilities
from controller.services.ftms.codec import (
    FtmsCodecError,
    MachineFeatures,
    SupportedRange,
    TargetSettingFeatures,
    TreadmillData,
    TreadmillFlags,
    decode_feature,
    decode_power_range,
    decode_resistance_range,
    decode_speed_range,
    decode_treadmill_data,
    encode_feature,
    encode_power_range,
    encode_resistance_range,
    encode_speed_range,
    encode_treadmill_data,
    split_treadmill_data,
)
from controller.services.ftms.control_codec import (
    InvalidParameter,
    OpCode,
    ResultCode,
    StatusCode,
    decode_request,
    decode_response,
    decode_status,
    encode_request,
    encode_response,
    encode_status,
)
from controller.settings.machine import load_config

# A record with every field the controller sends, running forward with a chest strap.
RUNNING = TreadmillData(
    instantaneous_speed_kmh=10.80, average_speed_kmh=9.50, total_distance_m=1234, total_energy_kcal=56,
    energy_per_hour_kcal=720, energy_per_minute_kcal=12, heart_rate_bpm=150, metabolic_equivalent=9.3,
    elapsed_time_s=600, force_on_belt_n=120, power_output_w=360)
# Worked by hand, field by field (all little-endian):
#   flags   bits 1 avg speed, 2 distance, 7 energy, 8 HR, 9 MET, 10 elapsed, 12 force+power;
#           bit 0 clear = instantaneous speed present → 0x0002+0x0004+0x0080+0x0100+0x0200
#           +0x0400+0x1000 = 0x1786                                          → 86 17
#   speed   10.80 km/h / 0.01 = 1080 = 0x0438 (uint16)                        → 38 04
#   avg     9.50 km/h / 0.01 = 950 = 0x03B6                                   → b6 03
#   dist    1234 m = 0x0004D2 (uint24)                                         → d2 04 00
#   energy  total 56 kcal = 0x0038, per hour 720 = 0x02D0, per minute 12 (uint8) → 38 00 d0 02 0c
#   HR      150 bpm = 0x96 (uint8)                                             → 96
#   MET     9.3 / 0.1 = 93 = 0x5D (uint8)                                      → 5d
#   elapsed 600 s = 0x0258 (uint16)                                            → 58 02
#   force   120 N = 0x0078 (sint16); power 360 W = 0x0168 (sint16)             → 78 00 68 01
RUNNING_HEX = "8617" "3804" "b603" "d20400" "3800d0020c" "96" "5d" "5802" "7800" "6801"

# Running backward, no chest-strap signal: speed is a magnitude, force keeps its sign.
BACKWARD_NO_HR = TreadmillData(
    instantaneous_speed_kmh=7.20, average_speed_kmh=6.00, total_distance_m=70000, total_energy_kcal=300,
    energy_per_hour_kcal=None, energy_per_minute_kcal=None, heart_rate_bpm=None, metabolic_equivalent=0.0,
    elapsed_time_s=65535, force_on_belt_n=-85, power_output_w=170)
#   flags   as above without bit 8 (HR): 0x1786 - 0x0100 = 0x1686             → 86 16
#   speed   720 = 0x02D0 → d0 02;  avg 600 = 0x0258 → 58 02
#   dist    70000 = 0x011170 (uint24)                                          → 70 11 01
#   energy  300 = 0x012C; per hour/minute "not available" = 0xFFFF, 0xFF       → 2c 01 ff ff ff
#   MET 0 → 00;  elapsed 65535 = 0xFFFF → ff ff
#   force   -85 N: two's complement 0x10000 - 85 = 0xFFAB                      → ab ff
#   power   170 W = 0x00AA                                                     → aa 00
BACKWARD_NO_HR_HEX = "8616" "d002" "5802" "701101" "2c01ffffff" "00" "ffff" "abff" "aa00"


def test_treadmill_data_matches_the_hand_worked_vector() -> None:
    assert encode_treadmill_data(RUNNING).hex() == RUNNING_HEX
    assert len(bytes.fromhex(RUNNING_HEX)) == 22


def test_backward_running_without_heart_rate_matches_its_vector() -> None:
    assert encode_treadmill_data(BACKWARD_NO_HR).hex() == BACKWARD_NO_HR_HEX


@pytest.mark.parametrize("record", [RUNNING, BACKWARD_NO_HR], ids=["forward-hr", "backward-no-hr"])
def test_treadmill_data_round_trips(record: TreadmillData) -> None:
    assert decode_treadmill_data(encode_treadmill_data(record)) == record


def test_the_controller_emits_exactly_two_flag_combinations_and_never_pace() -> None:
    assert int(RUNNING.flags) == 0x1786
    assert int(BACKWARD_NO_HR.flags) == 0x1686
    for record in (RUNNING, BACKWARD_NO_HR):
        assert not record.flags & (TreadmillFlags.INSTANTANEOUS_PACE | TreadmillFlags.AVERAGE_PACE)
        assert not record.flags & TreadmillFlags.MORE_DATA  # speed present


def test_a_22_byte_record_splits_into_20_byte_notifications_with_speed_last() -> None:
    packets = split_treadmill_data(RUNNING, max_payload=20)
    # Filled from the end: the last packet takes speed (2) + force/power (4) + elapsed (2) + MET (1)
    # + HR (1) + energy (5) + distance (3) = 18 bytes after its flags; average speed does not fit
    # and goes first, with More Data set (bit 0) and no speed:
    #   first: flags 0x0002 | 0x0001 = 0x0003 → 03 00, avg b6 03
    #   last:  flags 0x1786 - 0x0002 (avg) = 0x1784 → 84 17, then speed and the rest
    assert [p.hex() for p in packets] == ["0300b603", "8417" "3804" "d20400" "3800d0020c" "96" "5d" "5802" "78006801"]
    assert all(len(p) <= 20 for p in packets)
    merged = TreadmillData()
    for p in packets:
        merged = merged.merged(decode_treadmill_data(p))
    assert merged == RUNNING


def test_a_record_that_fits_is_not_split() -> None:
    assert split_treadmill_data(RUNNING, max_payload=244) == [encode_treadmill_data(RUNNING)]


@given(speed=st.integers(0, 0xFFFF), avg=st.integers(0, 0xFFFF), dist=st.integers(0, 0xFFFFFF),
       energy=st.integers(0, 0xFFFF), per_hour=st.integers(0, 0xFFFE), per_min=st.integers(0, 0xFE),
       hr=st.one_of(st.none(), st.integers(1, 255)), met=st.integers(0, 255), elapsed=st.integers(0, 0xFFFF),
       force=st.integers(-0x8000, 0x7FFF), power=st.integers(-0x8000, 0x7FFF),
       mtu_payload=st.integers(9, 40))
def test_any_in_range_record_round_trips_whole_and_split(speed: int, avg: int, dist: int, energy: int,
                                                        per_hour: int, per_min: int, hr: int | None, met: int,
                                                        elapsed: int, force: int, power: int,
                                                        mtu_payload: int) -> None:
    record = TreadmillData(round(speed * 0.01, 2), round(avg * 0.01, 2), dist, energy, per_hour, per_min, hr,
                           round(met * 0.1, 1), elapsed, force, power)
    assert decode_treadmill_data(encode_treadmill_data(record)) == record
    packets = split_treadmill_data(record, mtu_payload)
    assert all(len(p) <= mtu_payload for p in packets)
    merged = TreadmillData()
    for p in packets[:-1]:
        assert p[0] & TreadmillFlags.MORE_DATA
    assert not packets[-1][0] & TreadmillFlags.MORE_DATA
    for p in packets:
        merged = merged.merged(decode_treadmill_data(p))
    assert merged == record


@pytest.mark.parametrize(("record", "message"), [
    (TreadmillData(instantaneous_speed_kmh=-1.0), "instantaneous speed"),
    (TreadmillData(instantaneous_speed_kmh=700.0), "instantaneous speed"),
    (TreadmillData(total_distance_m=0x1000000), "total distance"),
    (TreadmillData(heart_rate_bpm=300), "heart rate"),
    (TreadmillData(force_on_belt_n=40000, power_output_w=1), "force on belt"),
    (TreadmillData(force_on_belt_n=10), "set both"),
])
def test_values_that_do_not_fit_their_field_are_refused_by_name(record: TreadmillData, message: str) -> None:
    with pytest.raises(FtmsCodecError, match=message):
        encode_treadmill_data(record)


@pytest.mark.parametrize(("hex_packet", "message"), [
    ("86", "at least the 2 flag bytes"),
    ("861738", "truncated"),  # speed needs 2 bytes
    ("0000380400", "after its last field"),
    ("2000", "not supported"),  # instantaneous pace: width disputed, never decoded
    ("0900", "not supported"),  # inclination
])
def test_malformed_treadmill_packets_are_refused(hex_packet: str, message: str) -> None:
    with pytest.raises(FtmsCodecError, match=message):
        decode_treadmill_data(bytes.fromhex(hex_packet))


def test_feature_of_this_machine_matches_its_vector() -> None:
    caps = capabilities(load_config())
    # Machine features: bits 0 avg speed, 2 distance, 9 energy, 10 HR, 11 MET, 12 elapsed,
    # 14 power, 15 force on belt → 0x0001+0x0004+0x0200+0x0400+0x0800+0x1000+0x4000+0x8000
    # = 0xDE05 → 05 de 00 00.  Targets: bits 0 speed, 2 resistance, 3 power = 0x0D → 0d 00 00 00.
    value = encode_feature(caps.machine, caps.targets)
    assert value.hex() == "05de0000" "0d000000"
    assert decode_feature(value) == (caps.machine, caps.targets)
    assert not caps.machine & MachineFeatures.PACE
    assert not caps.targets & TargetSettingFeatures.INCLINATION


def test_supported_ranges_of_the_reference_machine_match_their_vectors() -> None:
    caps = capabilities(load_config())
    # Speed: the speed cap accepts 0.2 m/s up to the forward over-speed limit 9 m/s.
    #   0.2 × 3.6 = 0.72 km/h → 72 = 0x0048 → 48 00; 9 × 3.6 = 32.4 km/h → 3240 = 0x0CA8 → a8 0c;
    #   step 0.01 km/h → 1 → 01 00
    assert encode_speed_range(caps.speed_kmh).hex() == "4800" "a80c" "0100"
    # Resistance: levels 0.0..10.0 in 0.1 steps, sint16/sint16/uint16 at 0.1 → 0, 100 = 0x64, 1
    assert encode_resistance_range(caps.resistance_level).hex() == "0000" "6400" "0100"
    # Power: 10 W = 0x000A → 0a 00; erg_max_w 1500 = 0x05DC → dc 05; step 1 W → 01 00
    assert encode_power_range(caps.power_w).hex() == "0a00" "dc05" "0100"
    assert decode_speed_range(encode_speed_range(caps.speed_kmh)) == caps.speed_kmh
    assert decode_resistance_range(encode_resistance_range(caps.resistance_level)) == caps.resistance_level
    assert decode_power_range(encode_power_range(caps.power_w)) == caps.power_w


def test_range_with_wrong_length_is_refused() -> None:
    with pytest.raises(FtmsCodecError, match="6 bytes"):
        decode_power_range(b"\x0a\x00")
    with pytest.raises(FtmsCodecError, match="speed"):
        encode_speed_range(SupportedRange(-1.0, 10.0, 0.01))


@pytest.mark.parametrize(("op", "value", "hex_packet"), [
    (OpCode.REQUEST_CONTROL, None, "00"),
    (OpCode.RESET, None, "01"),
    # 8.50 km/h / 0.01 = 850 = 0x0352 (uint16) → 52 03
    (OpCode.SET_TARGET_SPEED, 8.5, "025203"),
    # level 5.5 / 0.1 = 55 = 0x37 (sint16) → 37 00
    (OpCode.SET_TARGET_RESISTANCE_LEVEL, 5.5, "043700"),
    # 250 W = 0x00FA (sint16) → fa 00
    (OpCode.SET_TARGET_POWER, 250.0, "05fa00"),
    (OpCode.START_OR_RESUME, None, "07"),
    (OpCode.STOP_OR_PAUSE, 1.0, "0801"),  # stop
    (OpCode.STOP_OR_PAUSE, 2.0, "0802"),  # pause
])
def test_control_point_requests_match_their_vectors_and_round_trip(op: OpCode, value: float | None,
                                                                  hex_packet: str) -> None:
    assert encode_request(op, value).hex() == hex_packet
    request = decode_request(bytes.fromhex(hex_packet))
    assert (request.op_code, request.value) == (op, value)


def test_resistance_level_is_accepted_as_ftms_1_0_uint8_too() -> None:
    # FTMS 1.0 table 4.16: uint8 at 0.1 → level 5.5 is the single byte 0x37.
    assert decode_request(bytes.fromhex("0437")).value == 5.5
    # sint16 form of a negative level: -1.0 → -10 = 0xFFF6 → f6 ff
    assert decode_request(bytes.fromhex("04f6ff")).value == -1.0


@pytest.mark.parametrize("hex_packet", [
    "0252",  # speed needs a uint16
    "08",  # stop or pause needs its uint8
    "0803",  # 0x03 is neither stop (0x01) nor pause (0x02)
    "0001",  # request control takes no parameter
    "070a",  # start or resume takes no parameter
    "04",  # resistance level needs 1 or 2 bytes
])
def test_bad_parameters_raise_invalid_parameter_with_the_op_code(hex_packet: str) -> None:
    packet = bytes.fromhex(hex_packet)
    with pytest.raises(InvalidParameter) as info:
        decode_request(packet)
    assert info.value.op_code == packet[0]


@pytest.mark.parametrize("hex_packet", ["05fa", "05fa0000"])
def test_power_parameter_must_be_exactly_two_bytes(hex_packet: str) -> None:
    with pytest.raises(InvalidParameter, match="2-byte"):
        decode_request(bytes.fromhex(hex_packet))


def test_an_empty_write_has_no_op_code() -> None:
    with pytest.raises(FtmsCodecError, match="no op code"):
        decode_request(b"")


def test_unknown_op_codes_decode_for_a_not_supported_answer() -> None:
    assert decode_request(bytes.fromhex("11aabb")).op_code == 0x11


@pytest.mark.parametrize(("op", "result", "hex_packet"), [
    (OpCode.SET_TARGET_POWER, ResultCode.SUCCESS, "800501"),
    (OpCode.SET_TARGET_INCLINATION, ResultCode.OP_CODE_NOT_SUPPORTED, "800302"),
    (OpCode.SET_TARGET_SPEED, ResultCode.INVALID_PARAMETER, "800203"),
    (OpCode.START_OR_RESUME, ResultCode.OPERATION_FAILED, "800704"),
    (OpCode.RESET, ResultCode.CONTROL_NOT_PERMITTED, "800105"),
])
def test_responses_are_0x80_op_code_result(op: OpCode, result: ResultCode, hex_packet: str) -> None:
    assert encode_response(op, result).hex() == hex_packet
    assert decode_response(bytes.fromhex(hex_packet)) == (op, result)


@pytest.mark.parametrize(("code", "value", "hex_packet"), [
    (StatusCode.RESET, None, "01"),
    (StatusCode.STOPPED_OR_PAUSED_BY_USER, 1.0, "0201"),
    (StatusCode.STOPPED_OR_PAUSED_BY_USER, 2.0, "0202"),
    (StatusCode.STOPPED_BY_SAFETY_KEY, None, "03"),
    (StatusCode.STARTED_OR_RESUMED_BY_USER, None, "04"),
    (StatusCode.TARGET_SPEED_CHANGED, 8.5, "055203"),  # 850 = 0x0352
    (StatusCode.TARGET_RESISTANCE_LEVEL_CHANGED, 5.5, "0737"),  # uint8 at 0.1 (FTMS 1.0)
    (StatusCode.TARGET_POWER_CHANGED, 250.0, "08fa00"),
    (StatusCode.CONTROL_PERMISSION_LOST, None, "ff"),
])
def test_status_notifications_match_their_vectors(code: StatusCode, value: float | None, hex_packet: str) -> None:
    assert encode_status(code, value).hex() == hex_packet
    assert decode_status(bytes.fromhex(hex_packet)) == (code, value)
