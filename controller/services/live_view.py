"""The interactive terminal view of `millctl run`: live numbers and loop health."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from controller.core import thresholds
from controller.core.physiology import pace_s_per_km
from controller.services.core_view import CoreView


def stride_line(live: dict[str, Any]) -> str:
    """Cadence, step length and left/right balance over the last steps, or why there are none."""
    if live["cadence_spm"] is None:
        return "— (no step rhythm yet)"
    text = f"{live['cadence_spm']:.0f} steps/min, {live['step_length_m']:.2f} m"
    if live["balance_left_pct"] is not None:
        text += f", L {live['balance_left_pct']:.1f} % / R {100 - live['balance_left_pct']:.1f} %"
    return text


def render(core: CoreView) -> Table:
    """The live numbers and the core's health, from its latest snapshot and status."""
    table = Table(title=f"millctl — {core.info.board_url}", show_header=False, min_width=48)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    snap = core.latest
    status = core.status
    if snap is None:
        table.add_row("status", "arming the board…")
        return table
    v = snap.motion.speed_mps
    direction = {"forward": "▲ forward", "backward": "▼ backward", "stopped": "■ stopped"}[thresholds.direction(v)]
    pace = pace_s_per_km(v)
    totals = snap.totals
    table.add_row("direction", direction)
    table.add_row("speed", f"{abs(v) * 3.6:5.1f} km/h  ({v:+.2f} m/s)")
    table.add_row("pace", f"{int(pace // 60)}:{int(pace % 60):02d} /km" if pace else "—")
    table.add_row("distance", f"{totals.distance_m:7.1f} m  (fwd {totals.forward_m:.1f}, "
                              f"back {totals.backward_m:.1f})")
    table.add_row("power", f"{totals.power_3s_w:5.0f} W 3 s  (avg {totals.avg_power_w:.0f}, "
                           f"max {totals.max_power_w:.0f} W)")
    table.add_row("energy", f"{totals.energy_kcal:5.1f} kcal")
    hr = snap.sample.heart_rate_bpm
    table.add_row("heart rate", f"{hr} bpm" if hr else "—")
    table.add_row("stride", stride_line(totals.stride_live()))
    target = "" if snap.target is None else f" {snap.target:g}"
    table.add_row("mode", f"{snap.mode}{target}" + ("  SATURATED" if snap.demand.saturated else ""))
    if snap.demand.note:
        table.add_row("", snap.demand.note)
    progress = snap.progress
    if progress is not None:
        left = (f"{progress.remaining_s:.0f} s" if progress.remaining_s is not None
                else f"{progress.remaining_m or 0.0:.0f} m")
        nxt = f", next: {progress.next_label}" if progress.next_label else ""
        table.add_row("workout", f"{progress.workout} {progress.index + 1}/{progress.count} "
                                 f"{progress.label} ({progress.direction}) — {left} left{nxt}")
        if progress.wrong_direction:
            table.add_row("", f"WRONG DIRECTION: run {progress.direction}")
    table.add_row("brake", f"{snap.setpoint_ma} mA set, {snap.sample.brake_current_ma} mA measured")
    version = core.info.calibration_version
    table.add_row("calibration", "none: power is a nominal estimate" if version == "nominal" else version)
    table.add_row("time", f"{totals.elapsed_s:6.1f} s")
    table.add_row("loop", f"{status.loop_rate_hz:6.1f} Hz, late p99 {status.lateness_p99_ms:.2f} ms, "
                          f"missed {status.missed}, link errors {status.link_errors}")
    realtime = core.info.realtime
    if realtime:
        table.add_row("core", f"pid {core.info.core_pid}, {realtime.get('scheduler')} on CPU {realtime.get('cpu')}")
    return table


async def live_view(core: CoreView, refresh_hz: float = 4.0) -> None:
    """Redraw the view in wall time until cancelled."""
    with Live(render(core), console=Console(), refresh_per_second=refresh_hz, transient=False) as live:
        while True:
            await asyncio.sleep(1.0 / refresh_hz)
            live.update(render(core))
