"""`millctl sim-fleet`: machines per process within 2 ms p99 lateness, and the same fleet
spread over several processes (`--processes N`), against a local mosquitto.

Each configuration runs at normal priority and, where this process may (root), at real-time
priority (`chrt -f 20`, as the core process takes it on a machine): on a machine shared with
other work the first measures the neighbours as much as the fleet.

"Before" is the tree at BEFORE_COMMIT (main before the fleet4 pass: one ticker and shared phases
already, but the MQTT samplers on asyncio's timers, the outbox's SQLite commits on the event
loop, the lateness histograms as lists), unpacked into a temporary directory and run the same
way, interleaved with "now" so both share the machine's load of the moment."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_mqtt import _Mosquitto
from bench.bench_perf import native_copy, unpack

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 6.0
WARMUP_S = 2.0
LIMIT_P99_MS = 2.0
#: Interleaved before/now rounds of 40 machines in one process (their medians close the table).
ROUNDS = 3
#: main before the fleet4 pass (samplers on their machine's phase, outbox off the event loop).
BEFORE_COMMIT = "a7d6722"


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
             f"\"before\" is the tree at {BEFORE_COMMIT} (MQTT samplers on asyncio's timers, the outbox's SQLite "
             "commits on the event loop, lateness histograms as lists), run interleaved with \"now\" (each "
             "sampler on its machine's phase, the outbox on a thread, histograms as arrays) and with \"now, native "
             "build\" (the same tree with its optional mypyc build: scripts/build_native.sh).", "",
             "| tree | machines | processes | priority | p99 max ms | p99 median ms | max ms | missed | CPU % (sum) "
             "| within |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    priorities = (False, True) if may_use_fifo() else (False,)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        before = unpack(BEFORE_COMMIT, Path(tmp) / "before")
        broker = _Mosquitto(Path(tmp))
        trees = [("before", before), ("now", ROOT)]
        # The optional native build (docs/performance.md), in a copy of this tree; none without a compiler.
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            trees.append(("now, native build", native_copy(Path(tmp) / "native")))
        rows = [(name, tree, 40, 1) for _ in range(ROUNDS) for name, tree in trees]
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
                    if count == 40 and processes == 1:
                        runs.setdefault((name, label), []).append(rep)
                    within = rep["lateness_p99_ms"]["max"] <= LIMIT_P99_MS and rep["missed"] == 0
                    lines.append(f"{head} | {rep['lateness_p99_ms']['max']:.2f} | "
                                 f"{rep['lateness_p99_ms']['median']:.2f} | {rep['lateness_max_ms']:.2f} | "
                                 f"{rep['missed']} | {rep['cpu_percent']:.0f} | {'yes' if within else 'no'} |")
        finally:
            broker.stop()
    lines += ["", f"40 machines in one process, median of the {ROUNDS} interleaved rounds above:", "",
              "| tree | priority | p99 max ms | p99 median ms | max ms | missed | CPU % | rounds within |",
              "|---|---|---|---|---|---|---|---|"]
    for (name, label), reps in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cols = [[r["lateness_p99_ms"]["max"], r["lateness_p99_ms"]["median"], r["lateness_max_ms"],
                 r["missed"], r["cpu_percent"]] for r in reps]
        p99, p99_med, worst, missed, cpu = (statistics.median(c) for c in zip(*cols, strict=True))
        within = sum(r["lateness_p99_ms"]["max"] <= LIMIT_P99_MS and r["missed"] == 0 for r in reps)
        lines.append(f"| {name} | {label} | {p99:.2f} | {p99_med:.2f} | {worst:.2f} | {missed:.0f} | {cpu:.0f} | "
                     f"{within} of {len(reps)} |")
    return "\n".join(lines) + "\n"
