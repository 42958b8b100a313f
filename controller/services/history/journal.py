"""The session journal: what the store could not take, kept in the data directory until it can.

When a write to `sessions.sqlite3` fails mid-session (disk full, file made read-only, a
database damaged under a running process), the recorder appends the operation to
`sessions.journal.jsonl` instead (one JSON line each, flushed and fsynced) and keeps
appending, so the order holds. Each later flush tries to replay the journal into the
store; the next start does too. The journal is removed only once the store took it all, so
a session is never silently lost. While the file exists, storage is failing, and the
console says so (`storage_status`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from controller.core.summary import SegmentSummary, SessionRecord, SessionSummary
from controller.services.history.store import DAMAGED_SUFFIX, DB_NAME, SessionStore, SessionStoreError

log = logging.getLogger(__name__)

JOURNAL_NAME = "sessions.journal.jsonl"


class SessionJournal:
    """Append-only operations for the store, replayed in order."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / JOURNAL_NAME

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as f:
            return sum(1 for _ in f)

    def append(self, op: str, **data: Any) -> None:
        """One operation, on disk before this returns (`SessionStoreError` if even that fails)."""
        line = json.dumps({"op": op, **data}, separators=(",", ":")) + "\n"
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise SessionStoreError(f"{self.path}: cannot write the session journal either: {exc.strerror}; "
                                    f"free space or fix permissions in the data directory") from None

    def replay(self, store: SessionStore) -> int:
        """Apply every journaled operation to `store`, then remove the journal. Returns the
        number applied; on a failure the journal stays (`SessionStoreError`)."""
        if not self.path.exists():
            return 0
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        applied = 0
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s: skipped a torn line (the process stopped while writing it)", self.path)
                continue
            _apply(store, entry)
            applied += 1
        self.path.unlink()
        return applied


def _apply(store: SessionStore, entry: dict[str, Any]) -> None:
    op = entry.get("op")
    if op == "begin":
        if store.has_session(entry["session_id"]):
            return  # already there: beginning again would replace its records
        # The recording process's pid: if it is gone, the store reports the session interrupted.
        store.begin(entry["session_id"], entry["machine"], entry["started_at"], entry.get("workout"),
                    pid=entry.get("pid"))
    elif op == "records":
        store.add_records(entry["session_id"], [(SessionRecord.model_validate(r), float(w))
                                                for r, w in entry["records"]])
    elif op == "lap":
        store.add_lap(entry["session_id"], SegmentSummary.model_validate(entry["lap"]))
    elif op == "finish":
        store.finish(SessionSummary.model_validate(entry["summary"]))


def storage_status(data_dir: Path | None) -> dict[str, Any]:
    """What the console shows about the session store: ok, or journaling, and any damaged
    database that was moved aside."""
    if data_dir is None:
        return {"ok": False, "problem": "no data directory: sessions are not recorded"}
    journal = Path(data_dir) / JOURNAL_NAME
    moved = sorted(p.name for p in Path(data_dir).glob(f"{DB_NAME}{DAMAGED_SUFFIX}*"))
    status: dict[str, Any] = {"ok": not journal.exists(), "moved_aside": moved}
    if journal.exists():
        status["problem"] = (f"the session database cannot be written: sessions are kept in {JOURNAL_NAME} "
                             f"and stored when it works again; see the machine's log")
    return status
