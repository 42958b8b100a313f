"""Versioned calibration files in the data directory.

`<data dir>/calibrations/v<N>.toml` holds one complete calibration (metres per count, brake
map, friction, belt mass) with its metadata; `<data dir>/calibrations/ACTIVE` names the one
the controller uses. A new calibration is a new file (never an edit); rollback only moves the
ACTIVE pointer, so the earlier map comes back exactly (TOML round-trips floats exactly).
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from controller.calibration.brake_map import CalibratedBrakeMap
from controller.calibration.errors import CalibrationError

log = logging.getLogger(__name__)

SUBDIR = "calibrations"
ACTIVE_FILE = "ACTIVE"
_VERSION_RE = re.compile(r"^v(\d+)$")
FORMAT = 1


@dataclass(frozen=True)
class ActiveCalibration:
    """One stored calibration as the controller uses it."""

    version: str
    metres_per_count: float | None
    brake_map: CalibratedBrakeMap | None
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def power_calibrated(self) -> bool:
        return self.brake_map is not None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def parse_calibration(data: dict[str, Any], path: Path | None = None) -> ActiveCalibration:
    """Build an ActiveCalibration from a file's TOML tables (CalibrationError if invalid)."""
    where = str(path) if path else "calibration"
    try:
        meta = dict(data["calibration"])
        version = str(meta["version"])
        speed = data.get("speed")
        mpc = float(speed["metres_per_count"]) if speed else None
        if mpc is not None and not 1e-6 < mpc < 1e-2:
            raise ValueError(f"metres_per_count {mpc} is implausible")
        brake = data.get("brake")
        brake_map = CalibratedBrakeMap.from_toml(brake, version) if brake else None
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: not a valid calibration file ({exc}); roll back to another "
                               f"version with `millctl calibrate rollback VERSION`") from None
    return ActiveCalibration(version, mpc, brake_map, data, path)


class CalibrationStore:
    """The calibrations of one machine, in its data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = Path(data_dir) / SUBDIR

    def versions(self) -> list[str]:
        """Stored versions, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.glob("v*.toml"):
            m = _VERSION_RE.match(p.stem)
            if m:
                found.append((int(m.group(1)), p.stem))
        return [name for _, name in sorted(found)]

    def path(self, version: str) -> Path:
        if not _VERSION_RE.match(version):
            raise CalibrationError(f"{version!r} is not a calibration version (expected v1, v2, …; "
                                   f"see `millctl calibrate history`)")
        return self.directory / f"{version}.toml"

    def active_version(self) -> str | None:
        pointer = self.directory / ACTIVE_FILE
        if not pointer.exists():
            return None
        text = pointer.read_text(encoding="utf-8").strip()
        return text or None

    def load(self, version: str) -> ActiveCalibration:
        path = self.path(version)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            known = ", ".join(self.versions()) or "none"
            raise CalibrationError(f"no calibration {version} (stored: {known})") from None
        except tomllib.TOMLDecodeError as exc:
            raise CalibrationError(f"{path}: not valid TOML ({exc}); roll back to another version") from None
        return parse_calibration(data, path)

    def active(self) -> ActiveCalibration | None:
        version = self.active_version()
        return self.load(version) if version else None

    def save(self, *, method: str, speed: dict[str, Any] | None, brake: dict[str, Any] | None,
             extra: dict[str, Any] | None = None, note: str = "", board: str = "",
             firmware: str = "", activate: bool = True) -> ActiveCalibration:
        """Store a new version (the next number) and make it active."""
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = [int(v[1:]) for v in self.versions()]
        version = f"v{max(numbers, default=0) + 1}"
        data: dict[str, Any] = {"calibration": {
            "format": FORMAT, "version": version, "method": method,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "based_on": self.active_version() or "", "board": board, "board_firmware": firmware,
            "note": note}}
        if speed:
            data["speed"] = speed
        if brake:
            data["brake"] = brake
        data.update(extra or {})
        cal = parse_calibration(data)  # never store what could not be loaded back
        path = self.path(version)
        _atomic_write(path, tomli_w.dumps(data))
        if activate:
            self.activate(version)
        return ActiveCalibration(version, cal.metres_per_count, cal.brake_map, data, path)

    def activate(self, version: str) -> ActiveCalibration:
        """Make a stored version active (rollback); checks it loads first."""
        cal = self.load(version)
        _atomic_write(self.directory / ACTIVE_FILE, version + "\n")
        return cal


def load_active(data_dir: Path | None) -> tuple[ActiveCalibration | None, str]:
    """The active calibration for the controller, or None and why (never raises: without a
    valid calibration the controller runs on the nominal model, marked uncalibrated)."""
    if data_dir is None:
        return None, "no data directory"
    store = CalibrationStore(data_dir)
    try:
        cal = store.active()
    except (CalibrationError, OSError) as exc:
        log.warning("calibration not loaded, running uncalibrated: %s", exc)
        return None, str(exc)
    if cal is None:
        return None, "no calibration yet (run `millctl calibrate speed` and `millctl calibrate brake`)"
    return cal, ""
