"""What this machine tells apps it can do: the Fitness Machine Feature bits and the target
ranges, derived from the machine config so they match what the modes will accept."""

from __future__ import annotations

from dataclasses import dataclass

from controller.services.ftms.codec import MachineFeatures, SupportedRange, TargetSettingFeatures
from controller.settings.machine import MachineConfig

KMH_PER_MPS = 3.6

#: The data fields `snapshot_data.treadmill_data` fills in.
MACHINE_FEATURES = (MachineFeatures.AVERAGE_SPEED | MachineFeatures.TOTAL_DISTANCE
                    | MachineFeatures.EXPENDED_ENERGY | MachineFeatures.HEART_RATE_MEASUREMENT
                    | MachineFeatures.METABOLIC_EQUIVALENT | MachineFeatures.ELAPSED_TIME
                    | MachineFeatures.POWER_MEASUREMENT | MachineFeatures.FORCE_ON_BELT_AND_POWER_OUTPUT)
#: Targets an app may set: speed (speed cap), resistance level (level mode), power (ERG).
TARGET_FEATURES = TargetSettingFeatures.SPEED | TargetSettingFeatures.RESISTANCE | TargetSettingFeatures.POWER

#: Speed cap limits of `controller.core.modes.speed_cap.SpeedCapMode` (m/s).
SPEED_CAP_MIN_MPS = 0.2
SPEED_CAP_MAX_MPS = 12.0
#: The lowest ERG target offered: below it belt friction alone exceeds the target at a jog.
ERG_MIN_W = 10.0


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Feature bits and target ranges (speed in km/h, level unitless, power in W)."""

    machine: MachineFeatures
    targets: TargetSettingFeatures
    speed_kmh: SupportedRange
    resistance_level: SupportedRange
    power_w: SupportedRange


def capabilities(config: MachineConfig) -> Capabilities:
    """The ranges the modes accept on this machine: a target outside them is refused with
    "invalid parameter" before it reaches the loop."""
    top_mps = min(SPEED_CAP_MAX_MPS, config.safety.overspeed_forward_mps)
    return Capabilities(
        machine=MACHINE_FEATURES, targets=TARGET_FEATURES,
        speed_kmh=SupportedRange(round(SPEED_CAP_MIN_MPS * KMH_PER_MPS, 2), round(top_mps * KMH_PER_MPS, 2), 0.01),
        resistance_level=SupportedRange(0.0, 10.0, 0.1),
        power_w=SupportedRange(ERG_MIN_W, float(int(config.modes.erg_max_w)), 1.0))
