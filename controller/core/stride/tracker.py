"""The stride side of a session: feeds the step detector once a cycle from the estimator's
motion (board time, counted travel) and keeps the session's steps and a live window."""

from __future__ import annotations

from collections import deque
from typing import Any

from controller.core.brake_model import BrakeModel
from controller.core.estimator import Motion
from controller.core.stride.detector import NO_STEPS, DetectedStep, StepDetector
from controller.core.stride.metrics import DirectionStats, StrideStats
from controller.core.stride.resample import EvenGrid

#: The live figures are over the last this many steps (about 7 s of running).
LIVE_STEPS = 20
#: Steps kept for the session's chart and test rigs (about 2 h of running); the sums go on.
MAX_STEPS_KEPT = 20_000


class StrideTracker:
    """Steps and stride metrics of one session.

    It travels inside every snapshot (to another process, pickled): only the session's sums and
    the live figures go with it (`__getstate__`), never the detector's histories nor the list
    of steps, so a snapshot stays small however long the session. A tracker so received can be
    read, not fed."""

    def __init__(self, model: BrakeModel) -> None:
        self.detector: StepDetector | None = StepDetector(model)
        #: The detector's grid takes each cycle's sample straight from here: on most cycles that
        #: is all there is to do (issue 15's cost budget).
        self._grid: EvenGrid | None = self.detector.grid
        self.session = StrideStats.empty()
        self._recent: deque[DetectedStep] = deque(maxlen=LIVE_STEPS)
        self._position_m = 0.0
        #: The session's steps, oldest first (the first MAX_STEPS_KEPT).
        self.steps: list[DetectedStep] = []
        self._live: dict[str, Any] = DirectionStats().as_json()
        self._live_key: tuple[float, bool] = (0.0, False)
        #: The live figures are out of date (worked out when next read, not every step).
        self._live_stale = False

    def update(self, motion: Motion, current_ma: float) -> list[DetectedStep]:
        """Account one cycle; returns the steps it completed."""
        detector, grid = self.detector, self._grid
        if detector is None or grid is None:
            raise RuntimeError("a stride tracker received from another process cannot be fed")
        self._position_m = position = self._position_m + motion.moved_m
        points = grid.add(motion.board_time_s, position, current_ma)
        if not points and not grid.restarted:
            return NO_STEPS  # the detector changes only with a grid point or a restart
        steps = detector.process(points)
        for step in steps:
            self.session.add(step)
            self._recent.append(step)
            if len(self.steps) < MAX_STEPS_KEPT:
                self.steps.append(step)
        # the live figures change only with a step, a lock won or lost, or a turn (this runs
        # every cycle: no more than two comparisons on most)
        if steps or detector.locked != self._live_key[1] or detector.direction != self._live_key[0]:
            self._live_key = (detector.direction, detector.locked)
            self._live_stale = True
        return steps

    def _live_figures(self, direction: float, locked: bool) -> dict[str, Any]:
        stats = DirectionStats()
        if locked:
            for step in self._recent:
                if step.forward == (direction > 0):
                    stats.add(step)
        return stats.as_json()

    def live(self) -> dict[str, Any]:
        """Cadence, step length and balance over the last steps of the current direction, or
        nulls and a reason while no rhythm is followed."""
        if self._live_stale:
            self._live_stale = False
            self._live = self._live_figures(*self._live_key)
        return dict(self._live)

    def __getstate__(self) -> dict[str, Any]:
        return {"session": self.session, "_live": self.live()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.detector = None
        self._grid = None
        self.session = state["session"]
        self._live = state["_live"]
        self._live_key = (0.0, False)
        self._live_stale = False
        self._recent = deque(maxlen=LIVE_STEPS)
        self._position_m = 0.0
        self.steps = []
