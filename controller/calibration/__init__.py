"""Technician calibration: metres per encoder count, the brake map F(current, speed) with its
inverse, belt friction and inertia; verification; versioned storage in the data directory.

The control loop and the modes use a `CalibratedBrakeMap` exactly like the nominal
`controller.core.brake_model.BrakeModel` (same methods), so nothing downstream changes.
"""

from controller.calibration.brake_map import CalibratedBrakeMap
from controller.calibration.errors import CalibrationError, CalibrationRefused
from controller.calibration.store import ActiveCalibration, CalibrationStore, load_active

__all__ = ["ActiveCalibration", "CalibratedBrakeMap", "CalibrationError", "CalibrationRefused",
           "CalibrationStore", "load_active"]
