"""Motion thresholds every part of millctl agrees on, each defined once.

The modes, the session's pace, the console, the fleet table and the terminal view all ask the
same questions of the belt speed ("is it stopped?", "is a pace meaningful?"); they import the
answer from here so that no two displays disagree about the same sample. The console's
JavaScript receives them in its state payload. The board's power-on register defaults are part
of the hardware contract and live with the register map (`drivers.registers`).
"""

from __future__ import annotations

#: Below this belt speed (either direction) the belt counts as stopped: encoder quantisation and
#: an athlete shifting their weight on a standing belt stay under it.
STOPPED_BELOW_MPS = 0.05
#: Below this speed a pace (time per km) says nothing useful (0.5 m/s is 33 min/km): none is shown.
PACE_MIN_SPEED_MPS = 0.5


def direction(speed_mps: float) -> str:
    """"forward", "backward" or "stopped", the same word on every display."""
    if abs(speed_mps) < STOPPED_BELOW_MPS:
        return "stopped"
    return "forward" if speed_mps > 0 else "backward"
