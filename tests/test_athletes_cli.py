"""`millctl gym athletes …` and `gym class …` as a front desk runs them: JSON answers, clear
errors and exit codes (1: not found, 2: bad input or nothing reachable)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gym_helpers import MILLCTL, chunks, summary
from mqtt_helpers import free_port

from controller.core.summary import SessionRecord
from controller.gym.database import database_url, open_engine
from controller.gym.store import HubStore


def millctl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MILLCTL, *args, "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=60)


def test_add_list_show_an_athlete_with_their_session(tmp_path: Path) -> None:
    added = millctl(tmp_path, "gym", "athletes", "add", "--name", "Ada Lovelace", "--mass-kg", "58", "--pin",
                    "2468", "--json")
    assert added.returncode == 0, added.stderr
    ada = json.loads(added.stdout)["id"]
    recs = [SessionRecord(t_s=float(t), speed_mps=4.0, distance_m=4.0 * t, forward_m=4.0 * t, backward_m=0.0,
                          power_w=250.0, force_n=60.0) for t in range(1, 121)]
    engine = open_engine(database_url(None, tmp_path))
    s = summary("mill-1-20261205T080000000", distance_m=480.0).model_copy(update={"athlete": ada})
    HubStore(engine).ingest([(s, "gym")], chunks(s, recs))
    engine.dispose()
    listed = json.loads(millctl(tmp_path, "gym", "athletes", "list", "--json").stdout)
    assert [(a["id"], a["name"], a["pin_set"]) for a in listed] == [(ada, "Ada Lovelace", True)]
    shown = millctl(tmp_path, "gym", "athletes", "show", ada, "--json")
    assert shown.returncode == 0, shown.stderr
    page = json.loads(shown.stdout)
    assert page["bests"]["forward_400m_s"] == 100.0 and page["bests"]["forward_power_60s_w"] == 250.0
    assert page["recent_sessions"][0]["athlete"] == ada and "2468" not in shown.stdout
    text = millctl(tmp_path, "gym", "athletes", "show", ada)
    assert "Ada Lovelace" in text.stdout and "forward_400m_s" in text.stdout


def test_clear_errors_and_exit_codes(tmp_path: Path) -> None:
    unknown = millctl(tmp_path, "gym", "athletes", "show", "ath-nobody")
    assert unknown.returncode == 1 and "no athlete" in unknown.stderr
    no_class = millctl(tmp_path, "gym", "class", "show", "cls-nobody")
    assert no_class.returncode == 1 and "no class" in no_class.stderr
    bad_at = millctl(tmp_path, "gym", "class", "start", "--workout", "retro-intervals", "--machines", "m1",
                     "--at", "soonish", "--mqtt", "mqtt://127.0.0.1:1")
    assert bad_at.returncode == 2 and "--at" in bad_at.stderr
    bad_workout = millctl(tmp_path, "gym", "class", "start", "--workout", "../x", "--machines", "m1",
                          "--mqtt", "mqtt://127.0.0.1:1")
    assert bad_workout.returncode == 2 and "workout" in bad_workout.stderr
    no_broker = millctl(tmp_path, "gym", "class", "start", "--workout", "retro-intervals", "--machines", "m1",
                        "--mqtt", f"mqtt://127.0.0.1:{free_port()}")
    assert no_broker.returncode == 2 and "not started" in no_broker.stderr
    bad_pin = millctl(tmp_path, "gym", "athletes", "add", "--name", "Bob", "--pin", "12ab")
    assert bad_pin.returncode == 2 and "PIN" in bad_pin.stderr
