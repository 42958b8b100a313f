"""The stride side of a session: feeds the step detector once a cycle from the estimator's
motion (board time, counted travel) and keeps the session's steps and a live window."""

from __future__ import annotations

from collections import deque
from typing import Any

from controller.core.brake_model import BrakeModel
from controller.core.estimator import Motion
from controller.core.stride.detector import DetectedStep, StepDetector
from controller.core.stride.metrics import DirectionStats, StrideStats

#: The live figures are over the last this many steps (about 7 s of running).
LIVE_STEPS = 20
#: Steps kept for the session's chart and test rigs (about 2 h of running); the sums go on.
MAX_STEPS_KEPT = 20_000


class StrideTracker:
    """Steps and stride metrics of one session."""

    def __init__(self, model: BrakeModel) -> None:
        self.detector = StepDetector(model)
        self.session = StrideStats.empty()
        self._recent: deque[DetectedStep] = deque(maxlen=LIVE_STEPS)
        self._position_m = 0.0
        #: The session's steps, oldest first (the first MAX_STEPS_KEPT).
        self.steps: list[DetectedStep] = []

    def update(self, motion: Motion, current_ma: float) -> list[DetectedStep]:
        """Account one cycle; returns the steps it completed."""
        self._position_m += motion.moved_m
        steps = self.detector.update(motion.board_time_s, self._position_m, current_ma)
        for step in steps:
            self.session.add(step)
            self._recent.append(step)
            if len(self.steps) < MAX_STEPS_KEPT:
                self.steps.append(step)
        return steps

    def live(self) -> dict[str, Any]:
        """Cadence, step length and balance over the last steps of the current direction, or
        nulls and a reason while no rhythm is followed."""
        stats = DirectionStats()
        direction = self.detector.direction
        if self.detector.locked:
            for step in self._recent:
                if step.forward == (direction > 0):
                    stats.add(step)
        return stats.as_json()
