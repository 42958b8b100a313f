"""Session history: every session's 1 Hz records, summary and laps in SQLite (WAL) in the
data directory, and its exports (CSV, FIT, PNG plot)."""

from controller.services.history.store import SessionNotFound, SessionStore, SessionStoreError, StoredSession

__all__ = ["SessionNotFound", "SessionStore", "SessionStoreError", "StoredSession"]
