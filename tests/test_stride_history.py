"""Stride in the session history: per-second cadence and step length in the store (with the
migration of a database made before them), the FIT export's running cadence read back by two
independent decoders, and the cadence chart of the session plot."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import fitdecode
import pytest
from garmin_fit_sdk import Decoder, Stream

from controller.core.summary import SessionRecord, SessionSummary
from controller.runtime import RunOptions, run_controller
from controller.services.history.fit_export import session_fit
from controller.services.history.recorder import session_recorder
from controller.services.history.store import SessionStore
from controller.settings.machine import load_config

OLD_RECORDS = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, machine TEXT NOT NULL, started_at TEXT NOT NULL,
    state TEXT NOT NULL, pid INTEGER, workout TEXT, summary_json TEXT);
CREATE TABLE records (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    t_s REAL NOT NULL, speed_mps REAL NOT NULL, distance_m REAL NOT NULL, forward_m REAL NOT NULL,
    backward_m REAL NOT NULL, power_w REAL NOT NULL, force_n REAL NOT NULL, heart_rate_bpm INTEGER,
    energy_kcal REAL NOT NULL, segment INTEGER, work_j REAL NOT NULL DEFAULT 0, PRIMARY KEY (session_id, t_s));
CREATE TABLE laps (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, lap_json TEXT NOT NULL, PRIMARY KEY (session_id, idx));
"""


def summary(cadence_spm: float | None, step_length_m: float | None = 1.1) -> SessionSummary:
    return SessionSummary(session_id="mill-1-20261205T080000000", machine="mill-1",
                          started_at="2026-12-05T08:00:00+00:00", elapsed_s=60.0, distance_m=180.0,
                          forward_m=180.0, cadence_spm=cadence_spm, step_length_m=step_length_m,
                          balance_left_pct=51.2)


def records(n: int, cadence_spm: float | None) -> list[SessionRecord]:
    return [SessionRecord(t_s=float(i + 1), speed_mps=3.0, distance_m=3.0 * (i + 1), forward_m=3.0 * (i + 1),
                          backward_m=0.0, power_w=100.0, force_n=33.0, cadence_spm=cadence_spm,
                          step_length_m=1.05 if cadence_spm else None) for i in range(n)]


def test_a_database_from_before_stride_gains_the_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "sessions.sqlite3")
    db.executescript(OLD_RECORDS)
    db.execute("INSERT INTO sessions VALUES ('old', 'mill-1', '2026-01-01T00:00:00+00:00', 'recording', NULL, "
               "NULL, NULL)")
    db.execute("INSERT INTO records VALUES ('old', 1.0, 3.0, 3.0, 3.0, 0.0, 100.0, 30.0, NULL, 0.1, NULL, 100.0)")
    db.commit()
    db.close()
    with SessionStore(tmp_path) as store:
        [old] = store.records("old")
        assert old.cadence_spm is None and old.distance_m == 3.0
        store.begin("new", "mill-1", "2026-12-05T08:00:00+00:00")
        store.add_records("new", [(r, 100.0) for r in records(3, 171.0)])
        assert [r.cadence_spm for r in store.records("new")] == [171.0] * 3
    with SessionStore(tmp_path) as store:  # opening again migrates nothing twice
        assert len(store.records("new")) == 3


@pytest.mark.parametrize("cadence_spm", [171.0, 114.5, 187.3])
def test_fit_running_cadence_is_strides_per_minute_with_its_fraction(cadence_spm: float) -> None:
    data = session_fit(summary(cadence_spm), records(5, cadence_spm))
    stream = Stream.from_byte_array(bytearray(data))
    decoder = Decoder(stream)
    assert decoder.check_integrity()
    stream.reset()
    messages, errors = decoder.read()
    assert errors == []
    [session] = messages["session_mesgs"]
    strides = session["avg_cadence"] + session["avg_fractional_cadence"]
    assert 2 * strides == pytest.approx(cadence_spm, abs=2 / 128)
    assert session["avg_step_length"] == pytest.approx(1100.0, abs=0.1)  # mm
    rec = messages["record_mesgs"][0]
    assert 2 * (rec["cadence"] + rec["fractional_cadence"]) == pytest.approx(cadence_spm, abs=2 / 128)
    # fitdecode, an independent decoder, with CRC checking on
    frames = list(fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.RAISE))
    [fs] = [f for f in frames if isinstance(f, fitdecode.FitDataMessage) and f.name == "session"]
    decoded = fs.get_value("avg_cadence") + fs.get_value("avg_fractional_cadence")
    assert 2 * decoded == pytest.approx(cadence_spm, abs=2 / 128)


def test_fit_without_a_rhythm_has_no_cadence_fields() -> None:
    data = session_fit(summary(None, None), records(3, None))
    frames = list(fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.RAISE))
    [fs] = [f for f in frames if isinstance(f, fitdecode.FitDataMessage) and f.name == "session"]
    assert fs.get_value("avg_cadence", fallback=None) is None


async def test_a_recorded_session_exports_its_cadence_to_fit(tmp_path: Path) -> None:
    """End to end: the loop on the simulator, the recorder storing it, the FIT export of what
    was stored; the decoded cadence is the session's."""
    options = RunOptions(runner="steady:3.0;cadence=176", duration_s=25.0, data_dir=tmp_path, speedup=0)
    await run_controller(load_config(), options, [session_recorder(tmp_path)])
    with SessionStore(tmp_path) as store:
        [stored] = store.list_sessions()
        data = session_fit(stored.summary, store.records(stored.id))
        stored_records = store.records(stored.id)
    assert stored.summary.cadence_spm == pytest.approx(176, rel=0.01)
    assert any(r.cadence_spm for r in stored_records)
    frames = list(fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.RAISE))
    [fs] = [f for f in frames if isinstance(f, fitdecode.FitDataMessage) and f.name == "session"]
    decoded = 2 * (fs.get_value("avg_cadence") + fs.get_value("avg_fractional_cadence"))
    assert decoded == pytest.approx(stored.summary.cadence_spm, abs=0.02)


def test_the_session_plot_has_a_cadence_chart(tmp_path: Path) -> None:
    from controller.services.history.plot import session_png

    with_rhythm = session_png(summary(171.0), records(60, 171.0))
    without = session_png(summary(None, None), records(60, None))
    assert with_rhythm[:8] == b"\x89PNG\r\n\x1a\n" and without[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "plot.png").write_bytes(with_rhythm)
    from PIL import Image

    image = Image.open(tmp_path / "plot.png")
    assert image.size == (1000, 900)  # four panels
    # the cadence panel (bottom quarter) draws its line in the cadence colour
    bottom = image.convert("RGB").crop((0, 700, 1000, 860))
    assert any(bottom.getpixel((x, y)) == (44, 160, 44) for x in range(0, 1000, 2) for y in range(0, 160))
