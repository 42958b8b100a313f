"""Bluetooth Running Speed and Cadence (RSC, service 0x1814) as bytes: RSC Measurement
(0x2A53) and RSC Feature (0x2A54). Pure functions, no Bluetooth; served beside FTMS so that
watches and running apps that read a foot pod see the belt's speed and the athlete's cadence.

RSC Measurement, little-endian: flags (uint8); instantaneous speed (uint16, 1/256 m/s);
instantaneous cadence (uint8, per minute: steps, as foot pods send it); then, by flag,
instantaneous stride length (uint16, 1/100 m: two steps, one of each foot) and total
distance (uint32, 1/10 m); flag bit 2 says running (1) or walking (0). RSC has no backward:
the speed is the belt speed's magnitude, as in FTMS.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any

#: Below this belt speed the athlete counts as walking (the walk–run transition is near 2 m/s).
RUNNING_FROM_MPS = 2.0


class RscCodecError(ValueError):
    """Bytes that are not a valid RSC value, or a value that does not fit its field."""


class RscFlags(enum.IntFlag):
    STRIDE_LENGTH = 1 << 0
    TOTAL_DISTANCE = 1 << 1
    RUNNING = 1 << 2


class RscFeature(enum.IntFlag):
    """RSC Feature bits (uint16)."""

    STRIDE_LENGTH = 1 << 0
    TOTAL_DISTANCE = 1 << 1
    WALKING_OR_RUNNING_STATUS = 1 << 2


#: What millctl measures: stride length, total distance, walking or running.
FEATURES = RscFeature.STRIDE_LENGTH | RscFeature.TOTAL_DISTANCE | RscFeature.WALKING_OR_RUNNING_STATUS


@dataclass(frozen=True, slots=True)
class RscMeasurement:
    """RSC Measurement values in the specification's units; None = field absent."""

    speed_mps: float
    cadence_spm: int  # 0 while no step rhythm is followed (RSC has no "unknown")
    stride_length_m: float | None = None
    total_distance_m: float | None = None
    running: bool = False


def _raw(value: float, resolution: float, hi: int, name: str) -> int:
    raw = round(value / resolution)
    if not 0 <= raw <= hi:
        raise RscCodecError(f"{name} {value} does not fit its RSC field (0..{hi * resolution:g})")
    return raw


def encode_rsc_feature(features: RscFeature = FEATURES) -> bytes:
    return struct.pack("<H", int(features))


def encode_rsc_measurement(m: RscMeasurement) -> bytes:
    flags = RscFlags(0)
    tail = b""
    if m.stride_length_m is not None:
        flags |= RscFlags.STRIDE_LENGTH
        tail += struct.pack("<H", _raw(m.stride_length_m, 0.01, 0xFFFF, "stride length (m)"))
    if m.total_distance_m is not None:
        flags |= RscFlags.TOTAL_DISTANCE
        tail += struct.pack("<I", _raw(m.total_distance_m, 0.1, 0xFFFFFFFF, "total distance (m)"))
    if m.running:
        flags |= RscFlags.RUNNING
    head = struct.pack("<BHB", int(flags), _raw(m.speed_mps, 1 / 256, 0xFFFF, "speed (m/s)"),
                       _raw(m.cadence_spm, 1, 0xFF, "cadence (steps/min)"))
    return head + tail


def decode_rsc_measurement(data: bytes) -> RscMeasurement:
    """The values the bytes carry (at the wire's resolution); `RscCodecError` if malformed."""
    if len(data) < 4:
        raise RscCodecError(f"RSC Measurement needs at least 4 bytes, got {len(data)}")
    flags, speed, cadence = struct.unpack_from("<BHB", data)
    if flags & ~0x07:
        raise RscCodecError(f"RSC Measurement flags 0x{flags:02x} set reserved bits")
    expected = 4 + (2 if flags & RscFlags.STRIDE_LENGTH else 0) + (4 if flags & RscFlags.TOTAL_DISTANCE else 0)
    if len(data) != expected:
        raise RscCodecError(f"RSC Measurement with flags 0x{flags:02x} is {expected} bytes, got {len(data)}")
    at = 4
    stride = total = None
    if flags & RscFlags.STRIDE_LENGTH:
        stride = struct.unpack_from("<H", data, at)[0] / 100
        at += 2
    if flags & RscFlags.TOTAL_DISTANCE:
        total = struct.unpack_from("<I", data, at)[0] / 10
    return RscMeasurement(speed / 256, cadence, stride, total, bool(flags & RscFlags.RUNNING))


def rsc_measurement(snapshot: Any) -> RscMeasurement:
    """The RSC values of a control-loop snapshot: belt speed, live cadence and stride length
    (two steps) over the last steps, total distance; cadence 0 and no stride length while no
    step rhythm is followed."""
    totals = snapshot.totals
    stride = totals.stride_live()
    speed = min(abs(snapshot.motion.speed_mps), 0xFFFF / 256)
    cadence = stride["cadence_spm"]
    step = stride["step_length_m"]
    return RscMeasurement(
        speed_mps=speed, cadence_spm=min(255, round(cadence)) if cadence is not None else 0,
        stride_length_m=min(655.35, 2.0 * step) if step is not None else None,
        total_distance_m=min(totals.distance_m, 0xFFFFFFFF / 10), running=speed >= RUNNING_FROM_MPS)
