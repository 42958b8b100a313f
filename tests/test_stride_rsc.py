"""Bluetooth Running Speed and Cadence (0x1814): the RSC Measurement and Feature bytes against
the specification's layout, decoded by bluetooth-sig (an independent implementation), and
`millctl ftms sample --rsc` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bluetooth_sig.gatt.characteristics.rsc_feature import RSCFeatureCharacteristic
from bluetooth_sig.gatt.characteristics.rsc_measurement import RSCMeasurementCharacteristic

from controller.services.ftms.rsc import (
    RscCodecError,
    RscMeasurement,
    decode_rsc_measurement,
    encode_rsc_feature,
    encode_rsc_measurement,
)

MILLCTL = str(Path(sys.executable).parent / "millctl")
MEASUREMENT = RSCMeasurementCharacteristic()


def test_bytes_follow_the_specification_layout() -> None:
    packet = encode_rsc_measurement(RscMeasurement(3.0, 176, 2.05, 1234.5, running=True))
    # flags 0x07 | speed 3.0 × 256 = 0x0300 | cadence 176 = 0xb0 | stride 205 cm | 12345 dm
    assert packet == bytes([0x07, 0x00, 0x03, 0xB0, 0xCD, 0x00, 0x39, 0x30, 0x00, 0x00])
    assert encode_rsc_measurement(RscMeasurement(1.25, 0)) == bytes([0x00, 0x40, 0x01, 0x00])  # walking, no extras
    assert encode_rsc_feature() == bytes([0x07, 0x00])


@pytest.mark.parametrize("m", [
    RscMeasurement(3.0, 176, 2.05, 1234.5, running=True),
    RscMeasurement(1.2, 112, None, 55.0, running=False),
    RscMeasurement(4.4, 190, 2.78, None, running=True),
    RscMeasurement(0.0, 0),
])
def test_bluetooth_sig_decodes_our_bytes_to_the_same_values(m: RscMeasurement) -> None:
    packet = encode_rsc_measurement(m)
    theirs = MEASUREMENT.parse_value(bytearray(packet))
    assert theirs.instantaneous_speed == pytest.approx(m.speed_mps, abs=1 / 512)
    assert theirs.instantaneous_cadence == m.cadence_spm
    assert theirs.is_running == m.running
    assert theirs.instantaneous_stride_length == (None if m.stride_length_m is None
                                                  else pytest.approx(m.stride_length_m, abs=0.005))
    assert theirs.total_distance == (None if m.total_distance_m is None
                                     else pytest.approx(m.total_distance_m, abs=0.05))
    assert decode_rsc_measurement(packet) == RscMeasurement(
        round(m.speed_mps * 256) / 256, m.cadence_spm,
        None if m.stride_length_m is None else round(m.stride_length_m * 100) / 100,
        None if m.total_distance_m is None else round(m.total_distance_m * 10) / 10, m.running)
    feature = RSCFeatureCharacteristic().parse_value(bytearray(encode_rsc_feature()))
    assert feature.instantaneous_stride_length_supported and feature.total_distance_supported


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x02", b"\x08\x00\x01\x50", b"\x01\x00\x01\x50",
                                  b"\x02\x00\x01\x50\x00\x00", b"\x00\x00\x01\x50\xff"])
def test_malformed_measurements_are_refused(data: bytes) -> None:
    with pytest.raises(RscCodecError):
        decode_rsc_measurement(data)


@pytest.mark.parametrize("m", [RscMeasurement(300.0, 170), RscMeasurement(3.0, 300), RscMeasurement(-1.0, 0),
                               RscMeasurement(3.0, 170, 700.0)])
def test_values_that_do_not_fit_are_refused(m: RscMeasurement) -> None:
    with pytest.raises(RscCodecError):
        encode_rsc_measurement(m)


def test_ftms_sample_rsc_prints_packets_bluetooth_sig_reads_as_the_athletes_cadence() -> None:
    done = subprocess.run([MILLCTL, "ftms", "sample", "--board", "sim", "--speedup", "0", "--rsc", "--json",
                           "--seconds", "16", "--runner", "steady:3.0;cadence=176"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 16
    early, late = lines[0], lines[-1]
    assert MEASUREMENT.parse_value(bytearray.fromhex(early["hex"])).instantaneous_cadence == 0  # no rhythm yet
    theirs = MEASUREMENT.parse_value(bytearray.fromhex(late["hex"]))
    assert theirs.instantaneous_cadence == pytest.approx(176, abs=4)
    assert theirs.instantaneous_speed == pytest.approx(3.0, abs=0.05) and theirs.is_running
    assert theirs.instantaneous_stride_length == pytest.approx(2 * 3.0 * 60 / 176, rel=0.05)


async def test_the_peripheral_serves_rsc_beside_ftms() -> None:
    """The Bluetooth server (on a recording transport: no adapter here) offers RSC Feature and
    notifies RSC Measurement with every Treadmill Data record; bluetooth-sig reads them."""
    import asyncio

    from ftms_helpers import RecordingTransport
    from modes_helpers import sim_loop

    from controller.services.core_link.in_process import InProcessCore
    from controller.services.ftms.peripheral import RSC_FEATURE, RSC_MEASUREMENT, TREADMILL_DATA, FtmsPeripheral

    loop, board = sim_loop("steady:3.2;cadence=172")
    transport = RecordingTransport(loop.clock)  # type: ignore[arg-type]
    server = asyncio.create_task(FtmsPeripheral(InProcessCore(loop), transport).run())
    await asyncio.sleep(0)
    async with board:
        await loop.run(20.0)
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    feature = RSCFeatureCharacteristic().parse_value(bytearray(transport.read_values[RSC_FEATURE]))
    assert feature.walking_or_running_status_supported
    rsc = transport.values(RSC_MEASUREMENT)
    assert len(rsc) >= 15 and transport.values(TREADMILL_DATA)
    last = MEASUREMENT.parse_value(bytearray(rsc[-1]))
    assert last.instantaneous_cadence == pytest.approx(172, abs=4) and last.is_running
