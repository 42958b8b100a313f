"""The `[modes]` section of the machine config: how the training modes behave on this machine.

Defaults are the reference machine's; every constant's reason is next to it."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ModesSection(BaseModel):
    """Tuning of ERG, speed cap, sled and parachute (docs/training-modes.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- ERG --------------------------------------------------------------------------
    #: Below this speed ERG stops raising the force (P/v would lock the belt): the force
    #: falls with speed instead, the athlete is told, and the target returns gently.
    erg_min_speed_mps: Annotated[float, Field(gt=0.2, le=5.0)] = 1.0
    #: Seconds to bring the target back after the athlete recovers from an easing.
    erg_recover_s: Annotated[float, Field(gt=0.0, le=120.0)] = 5.0
    #: Averaging time of the measured power the ERG feedback compares with the target.
    erg_power_filter_s: Annotated[float, Field(gt=0.05, le=10.0)] = 1.0
    #: Integral gain of the ERG feedback (per second): how fast a power error is trimmed.
    erg_feedback_per_s: Annotated[float, Field(ge=0.0, le=10.0)] = 0.5
    #: Memory of the athlete's recent pace (s): while slowing, the resistance may not rise
    #: more than 15 % above P/pace, so fatigue does not turn into a runaway force.
    erg_pace_memory_s: Annotated[float, Field(gt=0.5, le=300.0)] = 10.0
    erg_max_w: Annotated[float, Field(gt=0, le=3000.0)] = 1500.0
    # --- speed cap ----------------------------------------------------------------------
    #: Default backward cap when a speed-cap target gives only one number (m/s).
    speed_cap_backward_mps: Annotated[float, Field(gt=0.1, le=8.0)] = 2.0
    #: Proportional and integral gains of the speed-cap controller.
    speed_cap_gain_n_per_mps: Annotated[float, Field(gt=0, le=20_000)] = 1500.0
    speed_cap_integral_n_per_m: Annotated[float, Field(ge=0, le=50_000)] = 4000.0
    # --- sled ---------------------------------------------------------------------------
    #: Friction of a loaded sled on turf: static and kinetic (Andre et al. 2012).
    sled_static_mu: Annotated[float, Field(gt=0, le=2.0)] = 0.43
    sled_kinetic_mu: Annotated[float, Field(gt=0, le=2.0)] = 0.33
    #: Speed above which the sled has broken away and slides (kinetic friction).
    sled_breakaway_mps: Annotated[float, Field(gt=0, le=2.0)] = 0.3
    # --- parachute ----------------------------------------------------------------------
    #: Air density at 20 °C, sea level (kg/m³; ISO 2533 standard atmosphere gives 1.204).
    air_density_kg_m3: Annotated[float, Field(gt=0.5, le=1.5)] = 1.204
