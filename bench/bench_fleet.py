"""`millctl sim-fleet`: machines per process within 2 ms p99 lateness, and the same fleet
spread over several processes (`--processes N`), against a local mosquitto.

Each configuration runs at normal priority and, where this process may (root), at real-time
priority (`chrt -f 20`, as the core process takes it on a machine): on a machine shared with
other work the first measures the neighbours as much as the fleet.

"Before" is the tree at BEFORE_COMMIT (every machine on its own timerfd, wherever its start-up
put its phase; the report counting the shutdown), unpacked into a temporary directory and run
the same way, interleaved with "now" so both share the machine's load of the moment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_mqtt import _Mosquitto
from bench.bench_perf import unpack

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 6.0
WARMUP_S = 2.0
LIMIT_P99_MS = 2.0
#: The tree before the fleet's ticker (main before this pass).
BEFORE_COMMIT = "ca45469"


def may_use_fifo() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


def sim_fleet(port: int, count: int, processes: int, data_dir: Path, realtime: bool = False,
              tree: Path = ROOT) -> dict[str, Any]:
    env = {**os.environ, "MILLCTL_DATA_DIR": str(data_dir)}
    rt = ["chrt", "-f", "20"] if realtime else []
    proc = subprocess.run([*rt, sys.executable, "-m", "controller.cli", "sim-fleet", str(count), "--processes",
                           str(processes), "--mqtt", f"mqtt://127.0.0.1:{port}", "--duration", str(SECONDS),
                           "--warmup", str(WARMUP_S), "--json", "--name-prefix", f"f{count}x{processes}"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tree)
    if proc.returncode != 0:
        raise RuntimeError(f"sim-fleet {count} --processes {processes} failed: {proc.stderr[-500:]}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def run() -> str:
    lines = ["## sim-fleet: machines per process, and over several processes", "",
             f"{SECONDS:.0f} s per row ({WARMUP_S:.0f} s warm-up left out), 100 Hz loops, MQTT to a local mosquitto. "
             f"Within the limit: p99 lateness of the worst machine ≤ {LIMIT_P99_MS} ms and no missed cycle. "
             f"\"before\" is the tree at {BEFORE_COMMIT} (a timerfd per machine, phases wherever start-up put "
             "them, the shutdown counted), run interleaved with \"now\" (one ticker, one phase per machine, the "
             "report taken when the stop begins).", "",
             "| tree | machines | processes | priority | p99 max ms | p99 median ms | max ms | missed | CPU % (sum) "
             "| within |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    priorities = (False, True) if may_use_fifo() else (False,)
    with tempfile.TemporaryDirectory() as tmp:
        before = unpack(BEFORE_COMMIT, Path(tmp) / "before")
        broker = _Mosquitto(Path(tmp))
        rows = [(name, tree, 40, 1) for _ in range(2) for name, tree in (("before", before), ("now", ROOT))]
        rows += [("now", ROOT, 16, 1), ("now", ROOT, 40, 2), ("now", ROOT, 60, 1)]
        try:
            for name, tree, count, processes in rows:
                for realtime in priorities:
                    label = "FIFO 20" if realtime else "normal"
                    head = f"| {name} | {count} | {processes} | {label}"
                    try:
                        rep = sim_fleet(broker.port, count, processes, Path(tmp), realtime, tree)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        lines.append(f"{head} | failed: {str(exc)[:80]} | | | | | no |")
                        continue
                    within = rep["lateness_p99_ms"]["max"] <= LIMIT_P99_MS and rep["missed"] == 0
                    lines.append(f"{head} | {rep['lateness_p99_ms']['max']:.2f} | "
                                 f"{rep['lateness_p99_ms']['median']:.2f} | {rep['lateness_max_ms']:.2f} | "
                                 f"{rep['missed']} | {rep['cpu_percent']:.0f} | {'yes' if within else 'no'} |")
        finally:
            broker.stop()
    return "\n".join(lines) + "\n"
