"""An independent FTMS decoder (bluetooth-sig, from PyPI) reads what we send to the same values:
the packets the real `millctl ftms sample` prints, split notifications, and the read-only
characteristics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bluetooth_sig.gatt.characteristics.fitness_machine_control_point import (
    FitnessMachineControlPointCharacteristic,
)
from bluetooth_sig.gatt.characteristics.fitness_machine_feature import FitnessMachineFeatureCharacteristic
from bluetooth_sig.gatt.characteristics.fitness_machine_status import FitnessMachineStatusCharacteristic
from bluetooth_sig.gatt.characteristics.supported_power_range import SupportedPowerRangeCharacteristic
from bluetooth_sig.gatt.characteristics.supported_speed_range import SupportedSpeedRangeCharacteristic
from bluetooth_sig.gatt.characteristics.treadmill_data import TreadmillDataCharacteristic
from test_ftms_codec import BACKWARD_NO_HR, RUNNING

from controller.services.ftms.capabilities import capabilities
from controller.services.ftms.codec import (
    TreadmillData,
    encode_feature,
    encode_power_range,
    encode_speed_range,
    encode_treadmill_data,
    split_treadmill_data,
)
from controller.services.ftms.control_codec import OpCode, ResultCode, StatusCode, encode_response, encode_status
from controller.settings.machine import load_config

MILLCTL = str(Path(sys.executable).parent / "millctl")
TREADMILL = TreadmillDataCharacteristic()

# Our field name → bluetooth-sig's field name.
FIELDS = {
    "instantaneous_speed_kmh": "instantaneous_speed", "average_speed_kmh": "average_speed",
    "total_distance_m": "total_distance", "total_energy_kcal": "total_energy",
    "energy_per_hour_kcal": "energy_per_hour", "energy_per_minute_kcal": "energy_per_minute",
    "heart_rate_bpm": "heart_rate", "metabolic_equivalent": "metabolic_equivalent",
    "elapsed_time_s": "elapsed_time", "force_on_belt_n": "force_on_belt", "power_output_w": "power_output",
}
NOT_AVAILABLE = {"energy_per_hour_kcal": 0xFFFF, "energy_per_minute_kcal": 0xFF}


def _same_values(ours: dict[str, object], theirs: object) -> None:
    for name, value in ours.items():
        decoded = getattr(theirs, FIELDS[name])
        if value is None and name in NOT_AVAILABLE:
            # bluetooth-sig has no "not available": it reports the raw sentinel.
            assert decoded == NOT_AVAILABLE[name], name
        elif isinstance(value, float):
            assert decoded == pytest.approx(value, abs=1e-9), name
        else:
            assert decoded == value, name


def _sample(*args: str) -> list[str]:
    done = subprocess.run([MILLCTL, "ftms", "sample", "--board", "sim", "--speedup", "0", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("runner", ["steady:3.0", "steady:-2.0"], ids=["forward", "backward"])
def test_bluetooth_sig_decodes_what_ftms_sample_prints_to_the_same_values(runner: str) -> None:
    lines = _sample("--seconds", "6", "--runner", runner, "--json")
    assert len(lines) == 6
    for line in lines:
        row = json.loads(line)
        decoded = TREADMILL.parse_value(bytes.fromhex(row["hex"]))
        assert int(decoded.flags) == int(row["flags"], 16)
        _same_values(row["values"], decoded)
        assert decoded.instantaneous_pace is None and decoded.average_pace is None
    last = json.loads(lines[-1])["values"]
    assert last["elapsed_time_s"] == 6
    assert last["instantaneous_speed_kmh"] > 5.0  # the athlete is running (either way)
    if runner.startswith("steady:-"):
        assert last["force_on_belt_n"] < 0  # backward: force on belt keeps its sign


def test_the_plain_output_shows_hex_that_decodes_to_the_printed_values() -> None:
    lines = _sample("--seconds", "3", "--runner", "steady:3.0")
    assert len(lines) == 3
    for line in lines:
        _, hex_packet, text = line.split(maxsplit=2)
        decoded = TREADMILL.parse_value(bytes.fromhex(hex_packet))
        assert f"speed {decoded.instantaneous_speed:.2f} km/h" in text
        assert f"power {decoded.power_output} W" in text
        assert f"distance {decoded.total_distance} m" in text


@pytest.mark.parametrize("record", [RUNNING, BACKWARD_NO_HR], ids=["forward-hr", "backward-no-hr"])
def test_bluetooth_sig_decodes_the_hand_worked_vectors_and_their_split_packets(record: TreadmillData) -> None:
    ours = {name: getattr(record, name) for name in FIELDS}
    present = {k: v for k, v in ours.items() if v is not None or k in NOT_AVAILABLE}
    _same_values(present, TREADMILL.parse_value(encode_treadmill_data(record)))
    merged: dict[str, object] = {}
    for packet in split_treadmill_data(record, 20):
        decoded = TREADMILL.parse_value(packet)
        merged.update({k: getattr(decoded, v) for k, v in FIELDS.items() if getattr(decoded, v) is not None})
    assert merged.keys() == {k for k, v in ours.items() if v is not None or k in NOT_AVAILABLE}


def test_bluetooth_sig_reads_the_feature_and_ranges_as_advertised() -> None:
    caps = capabilities(load_config())
    feature = FitnessMachineFeatureCharacteristic().parse_value(encode_feature(caps.machine, caps.targets))
    assert int(feature.fitness_machine_features) == int(caps.machine)
    assert int(feature.target_setting_features) == int(caps.targets)
    speed = SupportedSpeedRangeCharacteristic().parse_value(encode_speed_range(caps.speed_kmh))
    assert (speed.minimum, speed.maximum) == pytest.approx((caps.speed_kmh.minimum, caps.speed_kmh.maximum))
    power = SupportedPowerRangeCharacteristic().parse_value(encode_power_range(caps.power_w))
    assert (power.minimum, power.maximum, power.minimum_increment) == (10, 1500, 1)


def test_bluetooth_sig_reads_our_responses_and_statuses() -> None:
    response = FitnessMachineControlPointCharacteristic().parse_value(
        encode_response(OpCode.SET_TARGET_POWER, ResultCode.INVALID_PARAMETER))
    assert int(response.response_op_code) == OpCode.SET_TARGET_POWER
    assert int(response.result_code) == ResultCode.INVALID_PARAMETER
    status = FitnessMachineStatusCharacteristic().parse_value(encode_status(StatusCode.TARGET_POWER_CHANGED, 250))
    assert int(status.op_code) == StatusCode.TARGET_POWER_CHANGED
    assert status.parameter == (250).to_bytes(2, "little")
