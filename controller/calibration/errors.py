"""Typed calibration errors; every message says what the technician should do."""

from __future__ import annotations


class CalibrationError(Exception):
    """A calibration command could not do its job (bad store, unknown version, bad input)."""


class CalibrationRefused(CalibrationError):
    """The recorded data would give a nonsense calibration; nothing was saved and the
    previous calibration stays active. `redo` says what to do before trying again."""

    def __init__(self, reason: str, redo: str) -> None:
        super().__init__(f"{reason}. Nothing was saved; the previous calibration stays active. {redo}")
        self.reason = reason
        self.redo = redo
