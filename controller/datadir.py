"""The one directory that holds a machine's state: calibrations, sessions, MQTT outbox."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MILLCTL_DATA_DIR"


def data_dir(explicit: str | Path | None = None, *, create: bool = True) -> Path:
    """`--data-dir`, else $MILLCTL_DATA_DIR, else $XDG_DATA_HOME/millctl (~/.local/share/millctl)."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR])
    else:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        path = Path(base) / "millctl"
    path = path.expanduser()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
