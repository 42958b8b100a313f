"""Safety: link supervision, the machine-fault model and its log, sensor plausibility.

The setpoint guard (the last word on the coil current) lives in `controller/core/guard.py`; the
supervisor here decides what the guard is asked for while a fault is active.
"""
