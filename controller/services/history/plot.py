"""PNG plot of a session: speed, power, heart rate and cadence against time (matplotlib, Agg)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on a controller: render to memory only
import matplotlib.pyplot as plt

from controller.core.summary import SessionRecord, SessionSummary


def session_png(summary: SessionSummary, records: list[SessionRecord]) -> bytes:
    """Four stacked panels sharing the time axis; heart rate and cadence say so when there is
    none (cadence: no step rhythm followed, docs/stride.md)."""
    t = [r.t_s / 60.0 for r in records]
    fig, (ax_v, ax_p, ax_hr, ax_c) = plt.subplots(4, 1, figsize=(10, 9), sharex=True, dpi=100)
    try:
        ax_v.plot(t, [r.speed_mps * 3.6 for r in records], color="#1f77b4")
        ax_v.axhline(0, color="#888", linewidth=0.8)
        ax_v.set_ylabel("speed km/h\n(− backward)")
        ax_p.plot(t, [r.power_w for r in records], color="#d62728")
        ax_p.set_ylabel("power W")
        rates = [(x, r.heart_rate_bpm) for x, r in zip(t, records, strict=True) if r.heart_rate_bpm]
        if rates:
            ax_hr.plot([x for x, _ in rates], [h for _, h in rates], color="#9467bd")
        else:
            ax_hr.text(0.5, 0.5, "no heart-rate signal", ha="center", va="center", transform=ax_hr.transAxes)
        ax_hr.set_ylabel("heart rate bpm")
        # Cadence: gaps where no rhythm was followed stay gaps (NaN breaks the line), never zero.
        cadence = [r.cadence_spm if r.cadence_spm is not None else float("nan") for r in records]
        if any(c == c for c in cadence):
            ax_c.plot(t, cadence, color="#2ca02c")
            if summary.cadence_spm is not None:
                ax_c.axhline(summary.cadence_spm, color="#2ca02c", linestyle=":", linewidth=0.8)
        else:
            ax_c.text(0.5, 0.5, "no step rhythm followed", ha="center", va="center", transform=ax_c.transAxes)
        ax_c.set_ylabel("cadence\nsteps/min")
        ax_c.set_xlabel("session time (min)")
        for ax in (ax_v, ax_p, ax_hr, ax_c):
            ax.grid(True, alpha=0.3)
            for lap in summary.segments[1:]:  # workout segment boundaries
                ax.axvline(lap.start_s / 60.0, color="#999", linestyle="--", linewidth=0.8)
        for lap in summary.segments if len(summary.segments) > 1 else []:
            ax_v.annotate(lap.label or f"#{lap.index + 1}", (lap.start_s / 60.0, 1.0),
                          xycoords=("data", "axes fraction"), xytext=(3, -12), textcoords="offset points",
                          fontsize=8, color="#555")
        fig.suptitle(f"{summary.session_id} · {summary.distance_m:.0f} m · {summary.elapsed_s / 60:.1f} min · "
                     f"avg {summary.avg_power_w:.0f} W ({summary.state})")
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)
