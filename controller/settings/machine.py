"""The machine config: TOML validated by pydantic. A bad file stops the controller with an
error naming the file, the field and what is allowed; nothing invalid reaches the board."""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config import DEFAULT_MACHINE_CONFIG
from controller.settings.modes import ModesSection
from controller.settings.mqtt import MqttSection
from controller.settings.web import WebSection
from drivers.registers import BRAKE_SETPOINT_MAX_MA, DEFAULT_MAP, RegisterMap

WATCHDOG_FLOOR_MS = 100


class ConfigError(Exception):
    """A config file that cannot be used; the message says where and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MachineSection(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = "mill-1"
    site: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = "gym"


class BoardSection(_Model):
    url: str = "sim"
    timeout_s: Annotated[float, Field(gt=0.001, le=5.0)] = 0.05
    device_id: Annotated[int, Field(ge=1, le=247)] = 1
    mirror_base: Annotated[int, Field(ge=0, le=65000)] = 100
    registers: dict[str, Annotated[int, Field(ge=0, le=65535)]] = {}

    @field_validator("registers")
    @classmethod
    def _known_names(cls, value: dict[str, int]) -> dict[str, int]:
        known = {f.name for f in (*DEFAULT_MAP.input_fields, *DEFAULT_MAP.holding_fields)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown register name(s) {sorted(unknown)}; allowed: {sorted(known)}")
        return value

    def register_map(self) -> RegisterMap:
        return DEFAULT_MAP.with_overrides(self.registers, self.mirror_base, self.device_id)


class LoopSection(_Model):
    rate_hz: Annotated[float, Field(ge=10.0, le=1000.0)] = 100.0


class SafetySection(_Model):
    max_current_ma: Annotated[int, Field(ge=0, le=BRAKE_SETPOINT_MAX_MA)] = 3000
    slew_ma_per_s: Annotated[float, Field(gt=0, le=100_000)] = 6000.0
    board_ramp_ma_per_s: Annotated[int, Field(ge=1, le=65535)] = 8000
    safe_brake_ma: Annotated[int, Field(ge=0, le=BRAKE_SETPOINT_MAX_MA)] = 1200
    watchdog_cycles: Annotated[int, Field(ge=3, le=200)] = 20
    # Link supervision and machine-fault responses (controller/core/safety/, docs/safety.md).
    link_loss_s: Annotated[float, Field(ge=0.01, le=2.0)] = 0.1
    reconnect_backoff_max_s: Annotated[float, Field(ge=0.01, le=5.0)] = 0.25
    overspeed_forward_mps: Annotated[float, Field(gt=0.5, le=15.0)] = 9.0
    overspeed_backward_mps: Annotated[float, Field(gt=0.5, le=15.0)] = 4.0
    overspeed_gain_ma_per_mps: Annotated[float, Field(gt=0, le=20_000)] = 2000.0
    # The coil must follow the setpoint (controller/core/safety/coil.py): a measured current this far
    # outside what was commanded, for longer than the coil's lag explains, is a fault.
    coil_tolerance_ma: Annotated[int, Field(ge=20, le=BRAKE_SETPOINT_MAX_MA)] = 250
    coil_lag_s: Annotated[float, Field(gt=0, le=1.0)] = 0.03

    @model_validator(mode="after")
    def _safe_within_max(self) -> SafetySection:
        if self.safe_brake_ma > self.max_current_ma:
            raise ValueError(f"safe_brake_ma ({self.safe_brake_ma}) must not exceed "
                             f"max_current_ma ({self.max_current_ma})")
        if self.overspeed_backward_mps > self.overspeed_forward_mps:
            raise ValueError(f"overspeed_backward_mps ({self.overspeed_backward_mps}) must not exceed "
                             f"overspeed_forward_mps ({self.overspeed_forward_mps}): backward "
                             f"running is the blind direction")
        return self


class EncoderSection(_Model):
    roller_diameter_mm: Annotated[float, Field(gt=20.0, lt=300.0)] = 80.0
    lines: Annotated[int, Field(ge=16, le=100_000)] = 1024

    @property
    def metres_per_count(self) -> float:
        return math.pi * self.roller_diameter_mm / 1000.0 / (4 * self.lines)


class LevelsSection(_Model):
    current_ma: Annotated[list[Annotated[int, Field(ge=0, le=BRAKE_SETPOINT_MAX_MA)]],
                          Field(min_length=11, max_length=11)] = [
        0, 300, 520, 720, 900, 1080, 1260, 1450, 1650, 1850, 2100]

    @field_validator("current_ma")
    @classmethod
    def _rising(cls, value: list[int]) -> list[int]:
        if any(b < a for a, b in itertools.pairwise(value)):
            raise ValueError("level currents must not decrease from level 0 to level 10")
        return value


class BrakeSection(_Model):
    force_max_n: Annotated[float, Field(gt=0, le=5000)] = 600.0
    current_max_ma: Annotated[float, Field(gt=0, le=BRAKE_SETPOINT_MAX_MA)] = 3000.0
    critical_speed_mps: Annotated[float, Field(gt=0.05, le=20)] = 1.5
    coulomb_friction_n: Annotated[float, Field(ge=0, le=500)] = 15.0
    viscous_n_per_mps: Annotated[float, Field(ge=0, le=200)] = 4.0
    belt_mass_kg: Annotated[float, Field(gt=1, le=1000)] = 90.0


class AthleteSection(_Model):
    body_mass_kg: Annotated[float, Field(gt=20, le=250)] = 75.0


class MachineConfig(_Model):
    """The whole machine config file."""

    machine: MachineSection = MachineSection()
    board: BoardSection = BoardSection()
    loop: LoopSection = LoopSection()
    safety: SafetySection = SafetySection()
    encoder: EncoderSection = EncoderSection()
    levels: LevelsSection = LevelsSection()
    brake: BrakeSection = BrakeSection()
    athlete: AthleteSection = AthleteSection()
    modes: ModesSection = ModesSection()
    mqtt: MqttSection = MqttSection()
    web: WebSection = WebSection()

    @property
    def watchdog_ms(self) -> int:
        """`watchdog_cycles` loop periods, but never under 100 ms: a busy Linux host can stall
        a few tens of ms, and a spurious trip drops the athlete onto the safe brake."""
        return max(WATCHDOG_FLOOR_MS, round(self.safety.watchdog_cycles * 1000.0 / self.loop.rate_hz))


def with_loop_rate(config: MachineConfig, rate_hz: float) -> MachineConfig:
    """`config` with another loop rate (`millctl run --rate-hz`), checked against the same
    limits as `[loop] rate_hz` in a config file; ConfigError names the option and the limit."""
    try:
        loop = LoopSection.model_validate({"rate_hz": rate_hz})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error("--rate-hz", exc, "invalid loop rate")) from None
    return config.model_copy(update={"loop": loop})


def describe_validation_error(path: Path | str, error: ValidationError, what: str = "invalid machine config") -> str:
    lines = [f"{path}: {what}"]
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        given = e.get("input")
        shown = "" if isinstance(given, dict) else f" (given: {given!r})"
        lines.append(f"  {where}: {e['msg']}{shown}")
    return "\n".join(lines)


def read_toml(file: Path, what: str, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """The parsed TOML of a config or workout file, or `error` saying which file and why."""
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{file}: {what} not found") from None
    except OSError as exc:
        raise error(f"{file}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{file}: not valid TOML: {exc}") from None


def load_config(path: Path | str | None = None) -> MachineConfig:
    """Load and validate a machine config; `None` loads the packaged default."""
    file = Path(path) if path is not None else DEFAULT_MACHINE_CONFIG
    data = read_toml(file, "config file")
    try:
        return MachineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(file, exc)) from None
