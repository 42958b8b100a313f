"""Session history: records, laps and summary in SQLite (WAL); FIT export checked by two
independent decoders; CSV; a crashed run kept as interrupted."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import fitdecode
import pytest
from console_helpers import record_workout
from garmin_fit_sdk import Decoder, Stream

from controller.core.summary import SessionRecord, SessionSummary
from controller.services.history.csv_export import records_csv
from controller.services.history.export import export_session
from controller.services.history.fit_export import session_fit
from controller.services.history.store import SessionNotFound, SessionStore, SessionStoreError

REPO = Path(__file__).resolve().parents[1]
MILLCTL = str(REPO / ".venv" / "bin" / "millctl")


async def test_workout_session_is_stored_with_records_laps_and_summary(tmp_path: Path) -> None:
    loop = await record_workout(tmp_path)
    with SessionStore(tmp_path) as store:
        assert store.journal_mode == "wal"
        [stored] = store.list_sessions()
        records = store.records(stored.id)
        laps = store.laps(stored.id)
    s = stored.summary
    assert stored.state == "finished" and s.workout == "short"
    assert s.session_id == loop.session.id
    assert s.elapsed_s == pytest.approx(loop.session.totals.elapsed_s)
    assert s.distance_m == pytest.approx(loop.session.totals.distance_m)
    assert [lap.label for lap in laps] == ["Warm-up", "Push", "Back"]
    assert len(records) == int(s.elapsed_s)  # one per second of session time
    assert [round(r.t_s) for r in records] == list(range(1, len(records) + 1))
    assert records[-1].distance_m <= s.distance_m
    assert s.backward_m > 1.0 and records[-1].backward_m > 0  # the backward segment counted apart
    assert {r.segment for r in records} == {0, 1, 2}
    assert all(r.heart_rate_bpm for r in records)


async def test_fit_export_passes_integrity_checks_and_matches_the_summary(tmp_path: Path) -> None:
    await record_workout(tmp_path)
    with SessionStore(tmp_path) as store:
        [stored] = store.list_sessions()
        data = export_session(store, stored.id, "fit").data
        n_records = len(store.records(stored.id))
    s = stored.summary

    # garmin-fit-sdk's own decoder: integrity (header, CRC), then the messages.
    stream = Stream.from_byte_array(bytearray(data))
    decoder = Decoder(stream)
    assert decoder.is_fit() and decoder.check_integrity()
    stream.reset()
    messages, errors = decoder.read()
    assert errors == []
    [session] = messages["session_mesgs"]
    assert (session["sport"], session["sub_sport"]) == ("running", "treadmill")
    assert session["total_distance"] == pytest.approx(s.distance_m, abs=0.01)
    assert session["total_elapsed_time"] == pytest.approx(s.elapsed_s, abs=0.001)
    assert session["avg_power"] == round(s.avg_power_w)
    assert len(messages["lap_mesgs"]) == len(s.segments) == 3
    assert sum(lap["total_distance"] for lap in messages["lap_mesgs"]) == pytest.approx(s.distance_m, abs=0.1)
    assert len(messages["record_mesgs"]) == n_records
    assert len(messages["activity_mesgs"]) == 1
    assert messages["file_id_mesgs"][0]["type"] == "activity"

    # fitdecode, an independent implementation, with CRC checking on.
    frames = list(fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.RAISE))
    sessions = [f for f in frames if isinstance(f, fitdecode.FitDataMessage) and f.name == "session"]
    assert sessions[0].get_value("total_distance") == pytest.approx(s.distance_m, abs=0.01)
    assert sessions[0].get_value("avg_power") == round(s.avg_power_w)


def test_corrupted_fit_fails_the_integrity_check() -> None:
    summary = SessionSummary(session_id="x", machine="m", started_at="2026-01-01T00:00:00+00:00",
                             elapsed_s=2.0, distance_m=5.0, avg_power_w=100.0)
    records = [SessionRecord(t_s=t, speed_mps=2.5, distance_m=2.5 * t, forward_m=2.5 * t, backward_m=0,
                             power_w=100, force_n=40) for t in (1.0, 2.0)]
    data = bytearray(session_fit(summary, records))
    data[40] ^= 0xFF
    assert not Decoder(Stream.from_byte_array(data)).check_integrity()
    with pytest.raises(fitdecode.FitCRCError):
        list(fitdecode.FitReader(io.BytesIO(bytes(data)), check_crc=fitdecode.CrcCheck.RAISE))


def test_csv_has_a_header_and_a_row_per_second() -> None:
    records = [SessionRecord(t_s=1.0, speed_mps=-1.5, distance_m=1.5, forward_m=0, backward_m=1.5,
                             power_w=80, force_n=-50, heart_rate_bpm=None)]
    lines = records_csv(records).splitlines()
    assert lines[0].startswith("t_s,speed_mps,distance_m,forward_m,backward_m,power_w,force_n,heart_rate_bpm")
    assert lines[1].split(",")[:2] == ["1.0", "-1.5"] and lines[1].split(",")[7] == ""


def test_unknown_session_says_how_to_find_ids(tmp_path: Path) -> None:
    with SessionStore(tmp_path) as store, pytest.raises(SessionNotFound, match="millctl sessions list"):
        store.get("nope")


def test_a_crashed_run_is_kept_up_to_its_last_second_as_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen([MILLCTL, "run", "--runner", "steady:3.0", "--speedup", "4", "--no-web",
                             "--data-dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        stored = 0
        while time.monotonic() < deadline and stored < 8:
            time.sleep(0.3)
            if (tmp_path / "sessions.sqlite3").exists():
                with sqlite3.connect(tmp_path / "sessions.sqlite3") as db:
                    stored = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        assert stored >= 8, "the run stored no records"
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a crash: no clean shutdown, no summary
        proc.wait()
    with SessionStore(tmp_path) as store:
        [stored_session] = store.list_sessions()
        assert stored_session.state == "interrupted"
        records = store.records(stored_session.id)
        s = stored_session.summary
        assert s.elapsed_s == records[-1].t_s >= 8
        assert s.distance_m == records[-1].distance_m > 10
        assert s.avg_power_w > 0
        assert export_session(store, stored_session.id, "fit").data[8:12] == b".FIT"
        # The next controller start stores it for good as interrupted.
        assert store.close_orphans() == [stored_session.id]
        assert store.get(stored_session.id).summary.state == "interrupted"
    listing = subprocess.run([MILLCTL, "sessions", "list", "--json", "--data-dir", str(tmp_path)],
                             capture_output=True, text=True, check=True)
    assert '"state": "interrupted"' in listing.stdout


def test_an_unusable_data_dir_is_named_in_the_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SessionStoreError, match=str(blocker)):
        SessionStore(blocker / "data")
