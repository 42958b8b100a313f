"""Packaged defaults: the machine config and the built-in workouts (TOML)."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_MACHINE_CONFIG = CONFIG_DIR / "machine.toml"
WORKOUTS_DIR = CONFIG_DIR / "workouts"
