"""Runs a workout inside a session: which segment is on, when the next one starts, whether
the athlete runs the wrong way, and what each segment added up to.

The engine reads the session totals (which only move while the session runs), so a pause
freezes the segment clock and distance by itself. It never touches the board: it tells the
loop which mode to use and which events to publish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.core.modes.base import Mode
from controller.core.physiology import POWER_AVERAGE_S, metabolic_kcal
from controller.core.session_totals import SessionTotals
from controller.core.stride.metrics import DirectionStats
from controller.core.summary import SegmentSummary
from controller.core.workouts.model import Segment, Workout

#: Running this fast the wrong way counts as wrong direction (walking on the spot does not).
WRONG_DIRECTION_MPS = 0.3
#: ...for this long before the athlete is warned (a stumble is not a wrong direction).
WRONG_DIRECTION_WARN_S = 1.0
#: Seconds before the end of a timed segment at which a countdown event is published.
COUNTDOWN_AT_S = (10, 3, 2, 1)


@dataclass(frozen=True, slots=True)
class WorkoutProgress:
    """Where the athlete is in the workout, for displays."""

    workout: str
    index: int  # 0-based segment index
    count: int
    label: str
    direction: str
    remaining_s: float | None  # timed segment: seconds to the next one
    remaining_m: float | None  # distance segment: metres to the next one
    next_label: str | None
    wrong_direction: bool
    workout_remaining_s: float | None  # None when a distance segment is still to come
    speed_cue_mps: float | None


@dataclass
class _Accumulator:
    start_elapsed_s: float
    start_forward_m: float
    start_backward_m: float
    start_work_j: float
    start_forward_work_j: float
    start_backward_work_j: float
    max_power_w: float = 0.0
    hr_weighted: float = 0.0
    hr_time_s: float = 0.0
    wrong_s: float = 0.0
    wrong_run_s: float = 0.0
    warned: bool = False
    saturated_s: float = 0.0
    countdowns: set[int] = field(default_factory=set)
    #: The session's steps (both directions) when the segment began (docs/stride.md).
    start_steps: DirectionStats = field(default_factory=DirectionStats)


def _snapshot(totals: SessionTotals) -> _Accumulator:
    return _Accumulator(totals.elapsed_s, totals.forward_m, totals.backward_m, totals.work_j,
                        totals.forward_work_j, totals.backward_work_j, start_steps=totals.stride_stats.both)


def _stride_fields(steps: DirectionStats) -> dict[str, float | None]:
    """A segment's cadence, step length and balance (None where its steps cannot say)."""
    report = steps.as_json()
    return {key: report[key] for key in ("cadence_spm", "step_length_m", "balance_left_pct")}


Publish = Callable[[str, dict[str, Any]], None]
ModeFactory = Callable[[Segment], Mode]


class WorkoutEngine:
    """Segment sequencing, countdowns, wrong-direction warnings and per-segment summaries."""

    def __init__(self, workout: Workout, make_mode: ModeFactory, publish: Publish) -> None:
        self.workout = workout
        self._make_mode = make_mode
        self._publish = publish
        self.index = 0
        self.finished = False
        self.summaries: list[SegmentSummary] = []
        self._acc: _Accumulator | None = None
        self._wrong = False

    @property
    def segment(self) -> Segment:
        return self.workout.segments[min(self.index, len(self.workout.segments) - 1)]

    def start(self, totals: SessionTotals) -> Mode:
        """Begin the first segment; returns its mode."""
        self.index = 0
        self.finished = False
        self.summaries = []
        return self._enter(totals)

    def _enter(self, totals: SessionTotals) -> Mode:
        self._acc = _snapshot(totals)
        self._wrong = False
        seg = self.segment
        self._publish("segment", {"event": "start", "index": self.index, "label": seg.label,
                                  "mode": seg.mode, "target": seg.target, "direction": seg.direction,
                                  "duration_s": seg.duration_s, "distance_m": seg.distance_m,
                                  "rest": seg.rest, "speed_mps": seg.speed_mps})
        return self._make_mode(seg)

    def _done_s_m(self, totals: SessionTotals) -> tuple[float, float]:
        acc = self._acc
        assert acc is not None
        distance = totals.forward_m - acc.start_forward_m + totals.backward_m - acc.start_backward_m
        return totals.elapsed_s - acc.start_elapsed_s, distance

    def update(self, totals: SessionTotals, speed_mps: float, saturated: bool,
               heart_rate_bpm: int | None, dt_s: float) -> Mode | None:
        """Account one running cycle; returns the next segment's mode when the segment
        changed, None otherwise. After the last segment `finished` is True."""
        if self.finished or self._acc is None:
            return None
        acc, seg = self._acc, self.segment
        if totals.elapsed_s - acc.start_elapsed_s >= min(POWER_AVERAGE_S, seg.duration_s or POWER_AVERAGE_S):
            # the best 3 s average, as for the session (the instantaneous figure is stride pulse)
            acc.max_power_w = max(acc.max_power_w, totals.power_3s_w)
        if heart_rate_bpm:
            acc.hr_weighted += heart_rate_bpm * dt_s
            acc.hr_time_s += dt_s
        if saturated:
            acc.saturated_s += dt_s
        self._check_direction(seg, speed_mps, dt_s)
        done_s, done_m = self._done_s_m(totals)
        if seg.duration_s is not None:
            left = seg.duration_s - done_s
            for mark in COUNTDOWN_AT_S:
                if left <= mark and mark not in acc.countdowns and seg.duration_s > mark:
                    acc.countdowns.add(mark)
                    self._publish("segment", {"event": "countdown", "index": self.index, "in_s": mark,
                                              "next": self._next_label()})
            over = left <= 1e-9
        else:
            over = done_m >= (seg.distance_m or 0.0)
        if not over:
            return None
        self._close(totals)
        self.index += 1
        if self.index >= len(self.workout.segments):
            self.finished = True
            self._publish("segment", {"event": "workout-finished", "workout": self.workout.name})
            return None
        return self._enter(totals)

    def _check_direction(self, seg: Segment, speed_mps: float, dt_s: float) -> None:
        acc = self._acc
        assert acc is not None
        wrong = ((seg.direction == "forward" and speed_mps < -WRONG_DIRECTION_MPS)
                 or (seg.direction == "backward" and speed_mps > WRONG_DIRECTION_MPS))
        if wrong:
            acc.wrong_s += dt_s
            acc.wrong_run_s += dt_s
            if acc.wrong_run_s >= WRONG_DIRECTION_WARN_S and not self._wrong:
                self._wrong = True
                self._publish("segment", {"event": "wrong-direction", "index": self.index,
                                          "expected": seg.direction, "speed_mps": round(speed_mps, 2)})
        else:
            acc.wrong_run_s = 0.0
            self._wrong = False

    def _next_label(self) -> str | None:
        nxt = self.index + 1
        if nxt >= len(self.workout.segments):
            return None
        seg = self.workout.segments[nxt]
        return seg.label or seg.mode

    def _close(self, totals: SessionTotals, partial: bool = False) -> None:
        acc, seg = self._acc, self.segment
        if acc is None:
            return
        elapsed = totals.elapsed_s - acc.start_elapsed_s
        work = totals.work_j - acc.start_work_j
        summary = SegmentSummary(
            index=self.index, label=seg.label + (" (partial)" if partial else ""), mode=seg.mode,
            target=seg.numeric_target, direction=seg.direction, start_s=acc.start_elapsed_s,
            elapsed_s=elapsed, forward_m=totals.forward_m - acc.start_forward_m,
            backward_m=totals.backward_m - acc.start_backward_m,
            distance_m=(totals.forward_m - acc.start_forward_m) + (totals.backward_m - acc.start_backward_m),
            work_j=work, avg_power_w=work / elapsed if elapsed > 0 else 0.0, max_power_w=acc.max_power_w,
            energy_kcal=metabolic_kcal(totals.forward_work_j - acc.start_forward_work_j,
                                       totals.backward_work_j - acc.start_backward_work_j),
            avg_heart_rate_bpm=acc.hr_weighted / acc.hr_time_s if acc.hr_time_s > 0 else None,
            wrong_direction_s=acc.wrong_s, saturated_s=acc.saturated_s,
            **_stride_fields(totals.stride_stats.both.since(acc.start_steps)))
        self.summaries.append(summary)
        self._publish("segment", {"event": "end", **summary.model_dump()})
        self._acc = None

    def close_partial(self, totals: SessionTotals) -> None:
        """The session ended mid-segment: keep what was done as a partial lap."""
        if not self.finished and self._acc is not None:
            self._close(totals, partial=True)
            self.finished = True

    def progress(self, totals: SessionTotals) -> WorkoutProgress:
        seg = self.segment
        remaining_s = remaining_m = None
        done_s, done_m = self._done_s_m(totals) if self._acc is not None else (0.0, 0.0)
        if seg.duration_s is not None:
            remaining_s = max(0.0, seg.duration_s - done_s)
        else:
            remaining_m = max(0.0, (seg.distance_m or 0.0) - done_m)
        later = self.workout.segments[self.index + 1:]
        total_left: float | None = None
        if remaining_s is not None and all(s.duration_s is not None for s in later):
            total_left = remaining_s + sum(s.duration_s or 0.0 for s in later)
        if self.finished:
            remaining_s, remaining_m, total_left = 0.0 if seg.duration_s else None, None, 0.0
        return WorkoutProgress(self.workout.name, self.index, len(self.workout.segments), seg.label,
                               seg.direction, remaining_s, remaining_m, self._next_label(), self._wrong,
                               total_left, seg.speed_mps)
