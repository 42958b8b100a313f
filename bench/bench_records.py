"""Records in the core, snapshots thinned: the 600 s sim run before and after, in one run.

`millctl run --board sim --speedup 0 --duration 600 --no-web --json` (free mode, steady runner,
100 Hz, the session recorder storing into a fresh data directory), alternating between the
tree at BEFORE_COMMIT (every cycle's snapshot pickled to the parent, which took the 1 Hz
records from them) and this tree (records taken in the core as events, snapshots at most one per
`SNAPSHOT_MIN_INTERVAL_S` of the core's wall time). Medians of `RUNS` runs each; CPU is the
child processes' user + system time (parent and core), the better figure on a shared machine.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.bench_perf import timed, unpack
from controller.core.endpoint import SNAPSHOT_MIN_INTERVAL_S
from controller.services.history.store import SessionStore

ROOT = Path(__file__).resolve().parent.parent
#: main before the records moved into the core.
BEFORE_COMMIT = "b6d750c"
SIM_SECONDS = 600
RUNS = 3


def sim_run(tree: Path, data: Path) -> dict[str, float | int | str]:
    wall, cpu, out = timed([sys.executable, "-m", "controller.cli", "run", "--board", "sim", "--speedup", "0",
                            "--duration", str(SIM_SECONDS), "--no-web", "--json", "--data-dir", str(data)], tree)
    report = json.loads(out)
    with SessionStore(data) as store:
        (session,) = [s for s in store.list_sessions() if s.id == report["session"]["id"]]
        records = store.records(session.id)
    seconds = [int(r.t_s) for r in records]
    digest = hashlib.sha256(json.dumps([r.model_dump() for r in records]).encode()).hexdigest()
    return {"wall_s": wall, "cpu_s": cpu, "truth": f"{report['truth']['distance_m']} m, {report['truth']['work_j']} J",
            "records": len(records), "digest": digest, "missing": len(set(range(1, max(seconds) + 1)) - set(seconds)),
            "snapshots": report["core"]["channel"]["snapshots_sent"]}


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        trees = {f"before ({BEFORE_COMMIT})": unpack(BEFORE_COMMIT, Path(tmp) / "before"), "now": ROOT}
        runs: dict[str, list[dict[str, float | int | str]]] = {name: [] for name in trees}
        for k in range(RUNS):  # alternating: both trees share the machine's load of the moment
            for name, tree in trees.items():
                runs[name].append(sim_run(tree, Path(tmp) / f"data-{name[:3]}-{k}"))
    lines = ["## Records in the core, snapshots thinned (bench_records.py)", "",
             f"`millctl run --board sim --speedup 0 --duration {SIM_SECONDS} --no-web --json`, session recorder "
             f"on; median of {RUNS} alternating runs each, start-up included. Snapshots: at most one per "
             f"{SNAPSHOT_MIN_INTERVAL_S * 1000:.0f} ms of the core's wall time now.", "",
             "| tree | wall s | CPU s (parent + core) | snapshots sent | records stored | seconds missing | truth |",
             "|---|---|---|---|---|---|---|"]
    medians = {}
    for name, rs in runs.items():
        wall = statistics.median(float(r["wall_s"]) for r in rs)
        cpu = statistics.median(float(r["cpu_s"]) for r in rs)
        medians[name] = (wall, cpu)
        truths = {str(r["truth"]) for r in rs}
        lines.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {statistics.median(int(r['snapshots']) for r in rs):.0f} "
                     f"| {'/'.join(str(r['records']) for r in rs)} | {'/'.join(str(r['missing']) for r in rs)} "
                     f"| {' / '.join(sorted(truths))} |")
    (w0, c0), (w1, c1) = medians.values()
    same = len({str(r["truth"]) for rs in runs.values() for r in rs}) == 1
    whole = [r for rs in runs.values() for r in rs if r["missing"] == 0]
    same_records = len({str(r["digest"]) for r in whole}) == 1
    lost = sum(int(r["missing"]) for rs in runs.values() for r in rs)
    lines += ["", f"Now against before, same run: {w0 / w1:.2f}× less wall, {c0 / c1:.2f}× less CPU; truth figures "
              f"{'identical' if same else 'DIFFER'}; stored records of the {len(whole)} runs with no second "
              f"missing {'identical, value for value' if same_records else 'DIFFER'}; seconds lost in all: {lost}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
