"""`millctl sessions list | show | export | plot` on a recorded workout."""

from __future__ import annotations

import json
from pathlib import Path

from console_helpers import record_workout
from typer.testing import CliRunner

from controller.cli import app


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_sessions_list_show_export_plot(tmp_path: Path) -> None:
    await record_workout(tmp_path)
    d = ["--data-dir", str(tmp_path)]
    code, out, _ = cli("sessions", "list", "--json", *d)
    assert code == 0
    [entry] = json.loads(out)
    for key in ("id", "distance_m", "elapsed_s", "avg_power_w"):
        assert key in entry
    sid = entry["id"]
    assert entry["state"] == "finished" and entry["workout"] == "short"

    code, out, _ = cli("sessions", "list", *d)
    assert code == 0 and "finished" in out

    code, out, _ = cli("sessions", "show", sid, *d)
    shown = json.loads(out)
    assert code == 0 and shown["session_id"] == sid and len(shown["segments"]) == 3
    assert shown["distance_m"] == entry["distance_m"] or abs(shown["distance_m"] - entry["distance_m"]) < 0.1

    fit = tmp_path / "out.fit"
    code, out, _ = cli("sessions", "export", sid, "--format", "fit", "--out", str(fit), *d)
    assert code == 0 and fit.read_bytes()[8:12] == b".FIT"
    csv_path = tmp_path / "out.csv"
    code, _, _ = cli("sessions", "export", sid, "--format", "csv", "--out", str(csv_path), *d)
    lines = csv_path.read_text().splitlines()
    assert code == 0 and len(lines) == 1 + int(shown["elapsed_s"])
    png = tmp_path / "plot.png"
    code, _, _ = cli("sessions", "plot", sid, "--out", str(png), *d)
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000


def test_sessions_errors_are_clear(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    code, out, _ = cli("sessions", "list", "--json", *d)
    assert code == 0 and json.loads(out) == []
    code, _, err = cli("sessions", "show", "nope", *d)
    assert code == 2 and "no session 'nope'" in err and "millctl sessions list" in err
    code, _, err = cli("sessions", "export", "nope", "--format", "gpx", *d)
    assert code == 2 and "unknown export format 'gpx'" in err
