"""Step detection from the belt and the stride metrics built on it (docs/stride.md).

`detector.StepDetector` finds the steps in the encoder signal; `metrics.StrideStats` turns
them into cadence, step length, left/right balance and step-time variability, forward and
backward apart; `tracker.StrideTracker` joins the two for the control loop.
"""
