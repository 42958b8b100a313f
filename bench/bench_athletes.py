"""Athletes and progression at scale: a gym's hub with many athletes and sessions (SQLite).

- `session_bests` over one hour of 1 Hz records (forward/backward intervals);
- the hub: storing N athletes × M sessions of 10 min with their records, the first roster
  (every session's bests computed once), a warm roster (kept bests), the roster-version check
  the hub runs every 2 s, and one athlete's page;
- the live tracker on the machine: per-record cost (it runs inside the control cycle at 1 Hz).

    .venv/bin/python bench/bench_athletes.py     # writes bench/RESULTS-athletes.md
"""

from __future__ import annotations

import datetime
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from controller.core.summary import SessionRecord, SessionSummary  # noqa: E402
from controller.gym.athletes import AthleteStore, athlete_page  # noqa: E402
from controller.gym.database import open_engine  # noqa: E402
from controller.gym.store import HubStore  # noqa: E402
from controller.progression.bests import BestsTracker, session_bests  # noqa: E402
from controller.services.telemetry.payloads import SessionRecords  # noqa: E402

T = TypeVar("T")
ATHLETES = 100
SESSIONS_EACH = 5
SESSION_S = 600


def intervals(seconds: int, fast: float) -> list[SessionRecord]:
    """30 s forward at `fast`, 30 s backward at half of it, repeated."""
    out, fwd, back = [], 0.0, 0.0
    for t in range(1, seconds + 1):
        v = fast if (t // 30) % 2 == 0 else -fast / 2
        fwd, back = (fwd + v, back) if v > 0 else (fwd, back - v)
        out.append(SessionRecord(t_s=float(t), speed_mps=v, distance_m=fwd + back, forward_m=fwd, backward_m=back,
                                 power_w=80 * abs(v), force_n=0.0))
    return out


def timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def run() -> str:
    hour = intervals(3600, 4.0)
    _, t_hour = timed(session_bests, hour)
    tracker = BestsTracker()
    start = time.perf_counter()
    for r in hour:
        tracker.add(r)
    per_record_us = (time.perf_counter() - start) / len(hour) * 1e6
    lines = ["## Athletes and progression (bench_athletes.py)", "",
             f"`session_bests` over one hour of 1 Hz records (3600, 30 s forward/backward intervals): "
             f"{t_hour * 1000:.1f} ms; the live tracker on the machine: {per_record_us:.1f} µs per record "
             f"(once a second, inside the control cycle).", ""]
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{Path(tmp) / 'hub.sqlite3'}")
        store = HubStore(engine)
        athletes = AthleteStore(engine, store)
        ids = [athletes.add(f"Athlete {i}", 60.0 + i % 30).id for i in range(ATHLETES)]
        records = intervals(SESSION_S, 3.5)
        start = time.perf_counter()
        for i, aid in enumerate(ids):
            for j in range(SESSIONS_EACH):
                sid = f"m-{i}-{j}"
                summary = SessionSummary(session_id=sid, machine="m", started_at=f"2026-12-0{1 + j}T08:00:00.000+00:00",
                                         distance_m=records[-1].distance_m, athlete=aid)
                chunk = SessionRecords(machine="m", site="gym", session_id=sid, chunk=0, chunks=1, records=records)
                store.ingest([(summary, "gym")], [chunk])
        t_ingest = time.perf_counter() - start
        n = ATHLETES * SESSIONS_EACH
        _, t_cold = timed(athletes.roster, "gym")
        roster, t_warm = timed(athletes.roster, "gym")
        _, t_version = timed(athletes.roster_version)
        _, t_page = timed(athlete_page, athletes, ids[0], None)
        size_kb = len(roster.model_dump_json()) / 1024
        engine.dispose()
    lines += [f"Hub on SQLite, {ATHLETES} athletes × {SESSIONS_EACH} sessions of {SESSION_S} s ({n} sessions, "
              f"{n * SESSION_S} records):", "",
              "| step | time |", "|---|---|",
              f"| store the sessions with their records | {t_ingest:.1f} s ({n / t_ingest:.0f} sessions/s) |",
              f"| first roster (every session's bests computed and kept) | {t_cold:.2f} s |",
              f"| roster again (bests kept) | {t_warm * 1000:.0f} ms ({size_kb:.0f} kB of JSON) |",
              f"| roster-version check (every 2 s in `gym serve`) | {t_version * 1000:.2f} ms |",
              f"| one athlete's page (`GET /api/athletes/ID`) | {t_page * 1000:.1f} ms |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    from run import machine  # bench/run.py

    text = run()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    (HERE / "RESULTS-athletes.md").write_text(
        f"# Athletes and classes: benchmark results\n\nMeasured {stamp} on {machine()}.\n"
        f"This machine is shared and noisy (other engineers' tests run beside it).\n\n{text}\n")
    print(text)
