"""The session store fails loudly, never silently: a garbage or half-truncated database, or a
read-only data directory, is refused before the brake is enabled (or, when the operator
allows it, the damaged database is moved aside); a write that fails mid-session goes to the
journal and the session is recovered at the next start."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from console_helpers import SHORT_WORKOUT, config_with, record_workout
from skeleton_helpers import MILLCTL, cli_env

from controller.runtime import RunOptions, run_controller
from controller.services.core_view import CoreView
from controller.services.history.journal import JOURNAL_NAME, SessionJournal, storage_status
from controller.services.history.recorder import SessionRecorder, session_recorder
from controller.services.history.store import DB_NAME, SessionStore

RUN = ["run", "--duration", "3", "--speedup", "0", "--no-web", "--json"]


def millctl(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MILLCTL, *args], capture_output=True, text=True, timeout=120, env=cli_env(data_dir))


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[Path]:
    """A directory nobody can write: a read-only tmpfs as root (root ignores modes), else mode 0555."""
    path.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=True)
        try:
            yield path
        finally:
            subprocess.run(["umount", str(path)], check=True)
    else:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)


def test_a_garbage_database_is_refused_before_the_brake_is_enabled(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database at all\n" * 100)
    proc = millctl(RUN, tmp_path)
    assert proc.returncode != 0
    assert str(tmp_path / DB_NAME) in proc.stderr and "--move-aside-damaged-store" in proc.stderr
    assert proc.stdout == ""  # no report: the controller never ran
    assert (tmp_path / DB_NAME).read_bytes().startswith(b"this is not a database")  # left as found


def test_a_half_truncated_database_is_refused(tmp_path: Path) -> None:
    asyncio.run(record_workout(tmp_path))
    db = tmp_path / DB_NAME
    with SessionStore(tmp_path) as store:  # fold the WAL in, so the file holds everything
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.truncate(size // 2)
    proc = millctl(RUN, tmp_path)
    assert proc.returncode != 0 and "damaged" in proc.stderr and str(db) in proc.stderr


def test_with_the_operators_leave_a_damaged_database_is_moved_aside_and_the_session_stored(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"\x00garbage" * 500)
    proc = millctl([*RUN, "--move-aside-damaged-store"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "moved aside" in proc.stderr
    moved = list(tmp_path.glob(f"{DB_NAME}.damaged-*"))
    assert len(moved) == 1 and moved[0].read_bytes().startswith(b"\x00garbage")
    listed = json.loads(millctl(["sessions", "list", "--json"], tmp_path).stdout)
    assert len(listed) == 1 and listed[0]["elapsed_s"] > 2
    assert storage_status(tmp_path)["moved_aside"] == [moved[0].name]


def test_a_read_only_data_directory_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with read_only_dir(tmp_path / "ro") as data_dir:
        proc = millctl(RUN, data_dir)
    assert proc.returncode != 0 and proc.stdout == ""
    assert str(data_dir) in proc.stderr and "cannot be written" in proc.stderr and "--data-dir" in proc.stderr


async def test_a_write_failing_mid_session_is_journaled_and_recovered_at_the_next_start(tmp_path: Path) -> None:
    (tmp_path / "workouts").mkdir()
    (tmp_path / "workouts" / "short.toml").write_text(SHORT_WORKOUT)
    status_while_failing: list[dict[str, object]] = []

    async def breaking_recorder(core: CoreView) -> None:
        """The real recorder, whose database refuses every write from the 6th second on."""
        store = SessionStore(tmp_path)
        recorder = SessionRecorder(core, store, SessionJournal(tmp_path))
        sub = core.events.subscribe(10_000)
        core.events.listeners.append(recorder.on_event)
        try:
            while True:
                await asyncio.sleep(0.02)
                snap = core.latest
                if snap is not None and snap.totals.elapsed_s > 6:
                    store._db.execute("PRAGMA query_only = ON")  # "attempt to write a readonly database"
                recorder.drain(sub)
                if recorder.journaling and not status_while_failing:
                    status_while_failing.append(storage_status(tmp_path))
        finally:
            recorder.drain(sub)
            core.events.unsubscribe(sub)
            store.close()

    options = RunOptions(workout="short", data_dir=tmp_path, speedup=8)
    first = await run_controller(config_with(), options, [breaking_recorder])
    assert (tmp_path / JOURNAL_NAME).exists()
    assert status_while_failing and status_while_failing[0]["ok"] is False
    assert "cannot be written" in str(status_while_failing[0]["problem"])
    with SessionStore(tmp_path) as store:
        before = store.get(first.loop.session.id)
    assert before.state != "finished"  # the database alone lost the end of it
    # The next start takes the journal back into the store, and the session is whole.
    await run_controller(config_with(), RunOptions(data_dir=tmp_path, speedup=0, duration_s=1),
                         [session_recorder(tmp_path)])
    assert not (tmp_path / JOURNAL_NAME).exists() and storage_status(tmp_path)["ok"] is True
    with SessionStore(tmp_path) as store:
        recovered = store.get(first.loop.session.id)
        records = store.records(first.loop.session.id)
    assert recovered.state == "finished" and recovered.summary.workout == "short"
    assert recovered.summary.elapsed_s >= 23 and len(records) >= 23
