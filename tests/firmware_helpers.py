"""Helpers for the firmware tests: build the firmware once, run `board-sim`, read its truth log."""

from __future__ import annotations

import bisect
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skeleton_helpers import MILLCTL, cli_env, wait_for_path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
BOARD_SIM = FIRMWARE / "build" / "board-sim"
#: The loop rate the bus and the simulated firmware carry with margin (docs/board.md).
SIM_RATE_HZ = 50.0


def realtime(priority: int) -> list[str]:
    """A `chrt -f` prefix when root may use it, else nothing.

    The simulated board must keep pace with real time and the controller with its period, as
    on a real machine (where millctl runs with real-time priority); on this shared 2-core box
    other processes would otherwise starve them. Both sleep between events, never spin."""
    chrt = shutil.which("chrt")
    return [chrt, "-f", str(priority)] if chrt and os.geteuid() == 0 else []


def make(target: str, *variables: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess[str]:
    """`make -C firmware TARGET`, output captured."""
    return subprocess.run(["make", "-C", str(FIRMWARE), target, *variables], capture_output=True,
                          text=True, timeout=timeout_s)


@dataclass
class TruthLog:
    """The harness's JSON lines: the belt and the coil as they really were (`rows`, one per
    10 ms), and with an athlete on the belt each step as it ended (`steps`) and the whole run's
    stride figures (`stride`, written when the harness stops)."""

    rows: list[dict[str, Any]]
    steps: list[dict[str, Any]] = field(default_factory=list)
    stride: dict[str, Any] | None = None

    @classmethod
    def read(cls, path: Path) -> TruthLog:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        summary = [line["stride"] for line in lines if "stride" in line]
        return cls(rows=[line for line in lines if "step" not in line and "stride" not in line],
                   steps=[line for line in lines if "step" in line],
                   stride=summary[-1] if summary else None)

    def at(self, t_s: float) -> dict[str, Any]:
        """The last row at or before `t_s` (rows are 10 ms apart)."""
        times = [r["t_s"] for r in self.rows]
        return self.rows[max(0, bisect.bisect_right(times, t_s) - 1)]

    def distance_between(self, start_s: float, end_s: float) -> float:
        """Metres the belt moved between two board times, from the harness's exact counts."""
        metres_per_count = self.rows[-1]["distance_m"] / max(1, abs(self.rows[-1]["count"]))
        return abs(self._count_at(end_s) - self._count_at(start_s)) * metres_per_count

    def _count_at(self, t_s: float) -> float:
        # Counts grow linearly between rows at a steady speed: interpolate.
        times = [r["t_s"] for r in self.rows]
        i = min(max(1, bisect.bisect_left(times, t_s)), len(times) - 1)
        a, b = self.rows[i - 1], self.rows[i]
        return float(a["count"] + (b["count"] - a["count"]) * (t_s - a["t_s"]) / (b["t_s"] - a["t_s"]))

    def between(self, start_s: float, end_s: float) -> list[dict[str, Any]]:
        return [r for r in self.rows if start_s <= r["t_s"] < end_s]


def wait_for_boot(truth: Path, boot_s: float = 0.3, timeout_s: float = 10.0) -> None:
    """Until the simulated board has run `boot_s` of its own time: its firmware has set up the
    UART by then. On a loaded machine the harness can start seconds late, and a request sent
    before the firmware listens is lost (millctl's first write then fails)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # whole lines only: the harness may be writing the last one
        lines = truth.read_text().split("\n")[:-1] if truth.exists() else []
        if any('"count"' in line and json.loads(line)["t_s"] >= boot_s for line in lines[-3:]):
            return
        time.sleep(0.02)
    raise TimeoutError(f"the simulated board did not run {boot_s} s within {timeout_s} s")


@contextmanager
def board_sim(tmp_path: Path, *args: str, profile: str = "steady:3.0") -> Iterator[tuple[Path, Path]]:
    """A running `board-sim`: yields (pty link, truth log path); stopped with SIGTERM after."""
    link = tmp_path / "ttyBOARD"
    truth = tmp_path / "truth.jsonl"
    # Above anything else a test runs with real-time priority (millctl's sims ask for 50): the
    # simulated board stands for hardware, which no host process delays. It sleeps between events.
    proc = subprocess.Popen([*realtime(60), str(BOARD_SIM), "--link", str(link), "--profile", profile,
                             "--truth-log", str(truth), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_path(link)
        wait_for_boot(truth)
        yield link, truth
    finally:
        proc.terminate()
        try:
            _out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        assert proc.returncode == 0, f"board-sim failed: {err}"


def write_config(tmp_path: Path, rate_hz: float = SIM_RATE_HZ) -> Path:
    path = tmp_path / "machine.toml"
    path.write_text(f"[loop]\nrate_hz = {rate_hz}\n")
    return path


def millctl_run(tmp_path: Path, link: Path, duration_s: float, *extra: str,
                timeout_s: float = 60.0) -> dict[str, Any]:
    """`millctl run --json` over RTU against the simulated board."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    proc = subprocess.run([*realtime(10), *MILLCTL, "run", "--config", str(write_config(tmp_path)),
                           "--board", f"serial://{link}?baud=115200", "--duration", str(duration_s),
                           "--no-web", "--json", *extra],
                          capture_output=True, text=True, timeout=timeout_s, env=cli_env(data_dir))
    assert proc.returncode == 0, f"millctl run failed:\n{proc.stderr}"
    report: dict[str, Any] = json.loads(proc.stdout)
    return report
