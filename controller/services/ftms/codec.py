"""FTMS 1.0 data characteristics as bytes: Fitness Machine Feature (0x2ACC), Treadmill Data
(0x2ACD) and the Supported Speed / Resistance Level / Power Range characteristics (0x2AD4,
0x2AD6, 0x2AD8). Pure functions, no Bluetooth.

Every field is little-endian with the unit and resolution the specification gives it (the
value on the wire is `round(value / resolution)`). Treadmill Data's flag bit 0 is inverted
("More Data"): 0 means the Instantaneous Speed field *is* present. The pace fields (flag bits
5 and 6) are never sent: decoders disagree on their width (uint8 km-pace vs uint16 s/km), and
apps compute pace from speed anyway.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, fields, replace

#: Default ATT MTU is 23 bytes: 3 bytes of notification header leave 20 for the value.
DEFAULT_MAX_PAYLOAD = 20


class FtmsCodecError(ValueError):
    """Bytes that are not a valid FTMS value, or a value that does not fit its field."""


class TreadmillFlags(enum.IntFlag):
    """Treadmill Data flags (FTMS 1.0 §4.9.1.1)."""

    MORE_DATA = 1 << 0  # inverted: 0 = Instantaneous Speed present
    AVERAGE_SPEED = 1 << 1
    TOTAL_DISTANCE = 1 << 2
    INCLINATION_AND_RAMP = 1 << 3
    ELEVATION_GAIN = 1 << 4
    INSTANTANEOUS_PACE = 1 << 5
    AVERAGE_PACE = 1 << 6
    EXPENDED_ENERGY = 1 << 7
    HEART_RATE = 1 << 8
    METABOLIC_EQUIVALENT = 1 << 9
    ELAPSED_TIME = 1 << 10
    REMAINING_TIME = 1 << 11
    FORCE_AND_POWER = 1 << 12


#: Flags this codec does not encode or decode (pace: width disputed; the rest: not measured).
UNSUPPORTED_FLAGS = (TreadmillFlags.INCLINATION_AND_RAMP | TreadmillFlags.ELEVATION_GAIN
                     | TreadmillFlags.INSTANTANEOUS_PACE | TreadmillFlags.AVERAGE_PACE
                     | TreadmillFlags.REMAINING_TIME)

#: "Data not available" for energy per hour / per minute (FTMS 1.0 §4.9.1.11-12).
ENERGY_PER_HOUR_UNAVAILABLE = 0xFFFF
ENERGY_PER_MINUTE_UNAVAILABLE = 0xFF


@dataclass(frozen=True, slots=True)
class TreadmillData:
    """Treadmill Data values in the specification's units; None = field absent.

    The energy group is present when `total_energy_kcal` is set (per hour / per minute then
    default to "not available"); the force/power group when `force_on_belt_n` is set."""

    instantaneous_speed_kmh: float | None = None
    average_speed_kmh: float | None = None
    total_distance_m: int | None = None
    total_energy_kcal: int | None = None
    energy_per_hour_kcal: int | None = None
    energy_per_minute_kcal: int | None = None
    heart_rate_bpm: int | None = None
    metabolic_equivalent: float | None = None
    elapsed_time_s: int | None = None
    force_on_belt_n: int | None = None
    power_output_w: int | None = None

    @property
    def flags(self) -> TreadmillFlags:
        f = TreadmillFlags(0)
        if self.instantaneous_speed_kmh is None:
            f |= TreadmillFlags.MORE_DATA
        for flag, name in _GROUP_KEYS:
            if getattr(self, name) is not None:
                f |= flag
        return f

    def merged(self, other: TreadmillData) -> TreadmillData:
        """This packet with the fields `other` carries (reassembling a split record)."""
        present = {f.name: getattr(other, f.name) for f in fields(other) if getattr(other, f.name) is not None}
        return replace(self, **present)


# The optional groups after Instantaneous Speed, in wire order: (flag, key field).
_GROUP_KEYS = (
    (TreadmillFlags.AVERAGE_SPEED, "average_speed_kmh"),
    (TreadmillFlags.TOTAL_DISTANCE, "total_distance_m"),
    (TreadmillFlags.EXPENDED_ENERGY, "total_energy_kcal"),
    (TreadmillFlags.HEART_RATE, "heart_rate_bpm"),
    (TreadmillFlags.METABOLIC_EQUIVALENT, "metabolic_equivalent"),
    (TreadmillFlags.ELAPSED_TIME, "elapsed_time_s"),
    (TreadmillFlags.FORCE_AND_POWER, "force_on_belt_n"),
)


def _int(value: float, resolution: float, lo: int, hi: int, name: str) -> int:
    raw = round(value / resolution)
    if not lo <= raw <= hi:
        raise FtmsCodecError(f"{name} {value} does not fit its FTMS field ({lo * resolution:g}..{hi * resolution:g})")
    return raw


def _uint24(value: int, name: str) -> bytes:
    return _int(value, 1, 0, 0xFFFFFF, name).to_bytes(3, "little")


def _group_bytes(data: TreadmillData, flag: TreadmillFlags) -> bytes:
    """The bytes of one optional field group (FTMS 1.0 §4.9.1.2-4.9.1.18)."""
    if flag == TreadmillFlags.AVERAGE_SPEED:
        return struct.pack("<H", _int(data.average_speed_kmh or 0.0, 0.01, 0, 0xFFFF, "average speed (km/h)"))
    if flag == TreadmillFlags.TOTAL_DISTANCE:
        return _uint24(data.total_distance_m or 0, "total distance (m)")
    if flag == TreadmillFlags.EXPENDED_ENERGY:
        per_hour = ENERGY_PER_HOUR_UNAVAILABLE if data.energy_per_hour_kcal is None else data.energy_per_hour_kcal
        per_min = ENERGY_PER_MINUTE_UNAVAILABLE if data.energy_per_minute_kcal is None else data.energy_per_minute_kcal
        return struct.pack("<HHB", _int(data.total_energy_kcal or 0, 1, 0, 0xFFFF, "total energy (kcal)"),
                           _int(per_hour, 1, 0, 0xFFFF, "energy per hour (kcal)"),
                           _int(per_min, 1, 0, 0xFF, "energy per minute (kcal)"))
    if flag == TreadmillFlags.HEART_RATE:
        return struct.pack("<B", _int(data.heart_rate_bpm or 0, 1, 0, 0xFF, "heart rate (bpm)"))
    if flag == TreadmillFlags.METABOLIC_EQUIVALENT:
        return struct.pack("<B", _int(data.metabolic_equivalent or 0.0, 0.1, 0, 0xFF, "metabolic equivalent"))
    if flag == TreadmillFlags.ELAPSED_TIME:
        return struct.pack("<H", _int(data.elapsed_time_s or 0, 1, 0, 0xFFFF, "elapsed time (s)"))
    if flag == TreadmillFlags.FORCE_AND_POWER:
        if data.power_output_w is None:
            raise FtmsCodecError("force on belt and power output travel together: set both or neither")
        return struct.pack("<hh", _int(data.force_on_belt_n or 0, 1, -0x8000, 0x7FFF, "force on belt (N)"),
                           _int(data.power_output_w, 1, -0x8000, 0x7FFF, "power output (W)"))
    raise FtmsCodecError(f"flag {flag!r} is not encoded by this codec")


def _speed_bytes(speed_kmh: float) -> bytes:
    return struct.pack("<H", _int(speed_kmh, 0.01, 0, 0xFFFF, "instantaneous speed (km/h)"))


def encode_treadmill_data(data: TreadmillData) -> bytes:
    """One Treadmill Data record as a single packet (flags, then fields in flag order)."""
    out = bytearray(struct.pack("<H", data.flags))
    if data.instantaneous_speed_kmh is not None:
        out += _speed_bytes(data.instantaneous_speed_kmh)
    for flag, name in _GROUP_KEYS:
        if getattr(data, name) is not None:
            out += _group_bytes(data, flag)
    return bytes(out)


def split_treadmill_data(data: TreadmillData, max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[bytes]:
    """A record as notifications of at most `max_payload` bytes each (FTMS 1.0 §4.9.1.1:
    every packet but the last has More Data = 1 and no speed; the last carries the speed).

    Groups keep their wire order across packets; each packet repeats the 2-byte flags."""
    if max_payload < 9:
        raise FtmsCodecError(f"max payload {max_payload} bytes cannot hold the largest field group")
    groups = [(flag, _group_bytes(data, flag)) for flag, name in _GROUP_KEYS if getattr(data, name) is not None]
    speed = b"" if data.instantaneous_speed_kmh is None else _speed_bytes(data.instantaneous_speed_kmh)
    # Fill from the end: the last packet carries the speed first, then as many trailing groups fit.
    packets: list[tuple[TreadmillFlags, bytes]] = []
    flags, body = TreadmillFlags(0), b""
    last = True
    for flag, blob in reversed(groups):
        room = max_payload - 2 - len(body) - (len(speed) if last else 0)
        if len(blob) > room:
            packets.append((flags, body))
            flags, body, last = TreadmillFlags(0), b"", False
        flags |= flag
        body = blob + body
    packets.append((flags, body))
    out = []
    for i, (group_flags, group_body) in enumerate(reversed(packets)):
        is_last = i == len(packets) - 1
        if is_last and data.instantaneous_speed_kmh is not None:
            out.append(struct.pack("<H", group_flags) + speed + group_body)
        else:
            out.append(struct.pack("<H", group_flags | TreadmillFlags.MORE_DATA) + group_body)
    return out


def decode_treadmill_data(packet: bytes) -> TreadmillData:
    """Decode one Treadmill Data packet (`FtmsCodecError` on short or unsupported packets)."""
    if len(packet) < 2:
        raise FtmsCodecError(f"treadmill data needs at least the 2 flag bytes, got {len(packet)}")
    flags = TreadmillFlags(struct.unpack_from("<H", packet)[0])
    if flags & UNSUPPORTED_FLAGS:
        raise FtmsCodecError(f"treadmill data flags {TreadmillFlags(flags & UNSUPPORTED_FLAGS)!r} are not supported")
    pos = 2
    values: dict[str, float | int | None] = {}

    def take(fmt: str) -> tuple[int, ...]:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(packet):
            raise FtmsCodecError(f"treadmill data truncated at byte {pos} (flags 0x{int(flags):04x})")
        out = struct.unpack_from(fmt, packet, pos)
        pos += size
        return out

    if not flags & TreadmillFlags.MORE_DATA:
        values["instantaneous_speed_kmh"] = round(take("<H")[0] * 0.01, 2)
    if flags & TreadmillFlags.AVERAGE_SPEED:
        values["average_speed_kmh"] = round(take("<H")[0] * 0.01, 2)
    if flags & TreadmillFlags.TOTAL_DISTANCE:
        low, high = take("<HB")
        values["total_distance_m"] = low | high << 16
    if flags & TreadmillFlags.EXPENDED_ENERGY:
        total, per_hour, per_min = take("<HHB")
        values["total_energy_kcal"] = total
        values["energy_per_hour_kcal"] = None if per_hour == ENERGY_PER_HOUR_UNAVAILABLE else per_hour
        values["energy_per_minute_kcal"] = None if per_min == ENERGY_PER_MINUTE_UNAVAILABLE else per_min
    if flags & TreadmillFlags.HEART_RATE:
        values["heart_rate_bpm"] = take("<B")[0]
    if flags & TreadmillFlags.METABOLIC_EQUIVALENT:
        values["metabolic_equivalent"] = round(take("<B")[0] * 0.1, 1)
    if flags & TreadmillFlags.ELAPSED_TIME:
        values["elapsed_time_s"] = take("<H")[0]
    if flags & TreadmillFlags.FORCE_AND_POWER:
        values["force_on_belt_n"], values["power_output_w"] = take("<hh")
    if pos != len(packet):
        raise FtmsCodecError(f"treadmill data has {len(packet) - pos} bytes after its last field")
    return TreadmillData(**values)  # type: ignore[arg-type]


# --- Fitness Machine Feature (0x2ACC) -------------------------------------------------------
class MachineFeatures(enum.IntFlag):
    """Fitness Machine Features field (FTMS 1.0 §4.3.1.1)."""

    AVERAGE_SPEED = 1 << 0
    CADENCE = 1 << 1
    TOTAL_DISTANCE = 1 << 2
    INCLINATION = 1 << 3
    ELEVATION_GAIN = 1 << 4
    PACE = 1 << 5
    STEP_COUNT = 1 << 6
    RESISTANCE_LEVEL = 1 << 7
    STRIDE_COUNT = 1 << 8
    EXPENDED_ENERGY = 1 << 9
    HEART_RATE_MEASUREMENT = 1 << 10
    METABOLIC_EQUIVALENT = 1 << 11
    ELAPSED_TIME = 1 << 12
    REMAINING_TIME = 1 << 13
    POWER_MEASUREMENT = 1 << 14
    FORCE_ON_BELT_AND_POWER_OUTPUT = 1 << 15
    USER_DATA_RETENTION = 1 << 16


class TargetSettingFeatures(enum.IntFlag):
    """Target Setting Features field (FTMS 1.0 §4.3.1.2)."""

    SPEED = 1 << 0
    INCLINATION = 1 << 1
    RESISTANCE = 1 << 2
    POWER = 1 << 3
    HEART_RATE = 1 << 4


def encode_feature(machine: MachineFeatures, targets: TargetSettingFeatures) -> bytes:
    """Fitness Machine Feature: two uint32 bit fields."""
    return struct.pack("<II", machine, targets)


def decode_feature(value: bytes) -> tuple[MachineFeatures, TargetSettingFeatures]:
    if len(value) != 8:
        raise FtmsCodecError(f"fitness machine feature is 8 bytes, got {len(value)}")
    machine, targets = struct.unpack("<II", value)
    return MachineFeatures(machine), TargetSettingFeatures(targets)


# --- Supported ranges (0x2AD4, 0x2AD6, 0x2AD8) ---------------------------------------------
@dataclass(frozen=True, slots=True)
class SupportedRange:
    """A target range the machine accepts: minimum, maximum and the smallest step."""

    minimum: float
    maximum: float
    increment: float

    def contains(self, value: float) -> bool:
        return self.minimum - 1e-9 <= value <= self.maximum + 1e-9


def encode_speed_range(r: SupportedRange) -> bytes:
    """Supported Speed Range: 3 × uint16, km/h, resolution 0.01 (FTMS 1.0 §4.13)."""
    return struct.pack("<HHH", *(_int(v, 0.01, 0, 0xFFFF, "speed (km/h)") for v in (r.minimum, r.maximum, r.increment)))


def decode_speed_range(value: bytes) -> SupportedRange:
    lo, hi, inc = _unpack("<HHH", value, "supported speed range")
    return SupportedRange(round(lo * 0.01, 2), round(hi * 0.01, 2), round(inc * 0.01, 2))


def encode_resistance_range(r: SupportedRange) -> bytes:
    """Supported Resistance Level Range: sint16, sint16, uint16, unitless, resolution 0.1
    (FTMS 1.0 §4.14)."""
    return struct.pack("<hhH", _int(r.minimum, 0.1, -0x8000, 0x7FFF, "resistance level"),
                       _int(r.maximum, 0.1, -0x8000, 0x7FFF, "resistance level"),
                       _int(r.increment, 0.1, 0, 0xFFFF, "resistance increment"))


def decode_resistance_range(value: bytes) -> SupportedRange:
    lo, hi, inc = _unpack("<hhH", value, "supported resistance level range")
    return SupportedRange(round(lo * 0.1, 1), round(hi * 0.1, 1), round(inc * 0.1, 1))


def encode_power_range(r: SupportedRange) -> bytes:
    """Supported Power Range: sint16, sint16, uint16, watts, resolution 1 (FTMS 1.0 §4.16)."""
    return struct.pack("<hhH", _int(r.minimum, 1, -0x8000, 0x7FFF, "power (W)"),
                       _int(r.maximum, 1, -0x8000, 0x7FFF, "power (W)"), _int(r.increment, 1, 0, 0xFFFF, "power (W)"))


def decode_power_range(value: bytes) -> SupportedRange:
    lo, hi, inc = _unpack("<hhH", value, "supported power range")
    return SupportedRange(float(lo), float(hi), float(inc))


def _unpack(fmt: str, value: bytes, what: str) -> tuple[int, ...]:
    if len(value) != struct.calcsize(fmt):
        raise FtmsCodecError(f"{what} is {struct.calcsize(fmt)} bytes, got {len(value)}")
    return struct.unpack(fmt, value)
