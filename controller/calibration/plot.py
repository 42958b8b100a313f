"""PNG plot of a brake calibration: the fitted map over speed for the recorded currents with
the measured window means, and the fit residuals (matplotlib, Agg backend: no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from controller.calibration.fit import BrakeFit
from controller.calibration.record import Recording


def save_plot(fit: BrakeFit, rec: Recording, path: Path, title: str) -> Path:
    """Write the map-and-residuals figure to `path` and return it."""
    brake = fit.brake_map
    fig, (ax_map, ax_res) = plt.subplots(1, 2, figsize=(12, 5))
    speeds = np.linspace(0.0, brake.speed_max_mps, 120)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 1.0, len(rec.schedule.currents_ma)))
    for current, colour in zip(rec.schedule.currents_ma, colours, strict=True):
        curve = [brake.brake_force_n(current, v) + brake.friction_n(v) for v in speeds]
        ax_map.plot(speeds, curve, color=colour, label=f"{current} mA")
        pts = [(w.mean_speed_mps, w.mean_force_n - brake.belt_mass_kg * w.delta_speed_mps / w.duration_s)
               for w in rec.windows if w.step_current_ma == current]
        if pts:
            ax_map.scatter(*zip(*pts, strict=True), color=colour, s=8)
    ax_map.set_xlabel("belt speed (m/s)")
    ax_map.set_ylabel("brake + friction (N)")
    ax_map.set_title(f"{title}: fitted map (lines), measured windows (dots)")
    ax_map.legend(fontsize=7, ncol=2)
    ax_res.scatter([w.mean_speed_mps for w in rec.windows], fit.residuals_n, s=8,
                   c=[w.step_current_ma for w in rec.windows], cmap="viridis")
    ax_res.axhline(0.0, color="grey", lw=0.8)
    ax_res.set_xlabel("belt speed (m/s)")
    ax_res.set_ylabel("residual (N)")
    ax_res.set_title(f"residuals: {fit.rms_residual_n:.1f} N RMS ({fit.relative_residual:.1%})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
