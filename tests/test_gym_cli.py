"""`millctl gym …` refuses what it cannot do with a clear message and the usual exit codes
(2: a wrong argument, 1: nothing found), as a user meets it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from gym_helpers import MILLCTL


def millctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MILLCTL, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "code", "message"), [
    (("gym", "export", "nope"), 1, "no session 'nope' at the hub"),
    (("gym", "export", "nope", "--format", "png"), 2, "unknown export format 'png'"),
    (("gym", "sessions", "--since", "last tuesday"), 2, "--since 'last tuesday': expected a date"),
    (("gym", "sessions", "--db", "mysql://h/db"), 2, "'mysql' is not supported"),
    (("gym", "serve", "--mqtt", "mqtt://127.0.0.1:1", "--web", "nowhere"), 2, "expected HOST:PORT"),
    (("gym", "serve"), 2, "gym serve needs a broker"),
])
def test_wrong_arguments_get_a_clear_error(args: tuple[str, ...], code: int, message: str, tmp_path: Path) -> None:
    proc = millctl(*args, "--data-dir", str(tmp_path))
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_empty_hub_lists_no_session(tmp_path: Path) -> None:
    proc = millctl("gym", "sessions", "--json", "--data-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert (tmp_path / "gym-hub.sqlite3").exists()  # the default database, in the data directory
