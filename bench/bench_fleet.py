"""`millctl sim-fleet`: machines per process within 2 ms p99 lateness, and the same fleet
spread over several processes (`--processes N`), against a local mosquitto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_mqtt import _Mosquitto

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 6.0
WARMUP_S = 2.0
LIMIT_P99_MS = 2.0


def sim_fleet(port: int, count: int, processes: int, data_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "MILLCTL_DATA_DIR": str(data_dir)}
    proc = subprocess.run([sys.executable, "-m", "controller.cli", "sim-fleet", str(count), "--processes",
                           str(processes), "--mqtt", f"mqtt://127.0.0.1:{port}", "--duration", str(SECONDS),
                           "--warmup", str(WARMUP_S), "--json", "--name-prefix", f"f{count}x{processes}"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"sim-fleet {count} --processes {processes} failed: {proc.stderr[-500:]}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def run() -> str:
    lines = ["## sim-fleet: machines per process, and over several processes", "",
             f"{SECONDS:.0f} s per row ({WARMUP_S:.0f} s warm-up left out), 100 Hz loops, MQTT to a local mosquitto. "
             f"Within the limit: p99 lateness of the worst machine ≤ {LIMIT_P99_MS} ms and no missed cycle.", "",
             "| machines | processes | p99 max ms | p99 median ms | max ms | missed | CPU % (sum) | within |",
             "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        broker = _Mosquitto(Path(tmp))
        try:
            for count, processes in ((16, 1), (40, 1), (40, 2)):
                try:
                    rep = sim_fleet(broker.port, count, processes, Path(tmp))
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    lines.append(f"| {count} | {processes} | failed: {str(exc)[:80]} | | | | | no |")
                    continue
                within = rep["lateness_p99_ms"]["max"] <= LIMIT_P99_MS and rep["missed"] == 0
                lines.append(f"| {count} | {processes} | {rep['lateness_p99_ms']['max']:.2f} | "
                             f"{rep['lateness_p99_ms']['median']:.2f} | {rep['lateness_max_ms']:.2f} | "
                             f"{rep['missed']} | {rep['cpu_percent']:.0f} | {'yes' if within else 'no'} |")
        finally:
            broker.stop()
    return "\n".join(lines) + "\n"
