"""A persistent outbox (SQLite) for messages that must not be lost: session summaries.

A message is stored before any attempt to send it and marked delivered only after the
broker acknowledged it (QoS 1 PUBACK). After a broker outage or a controller restart the
pending messages are sent again, byte for byte as recorded, oldest first. QoS 1 means "at
least once": if the process dies between the broker's ack and `mark_delivered`, the message
goes once more, so readers deduplicate on `session_id` (it is unique per session).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE delivered_at IS NULL;
"""


class OutboxError(Exception):
    """The outbox database cannot be opened or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    topic: str
    payload: bytes
    qos: int


class Outbox:
    """Pending messages in an SQLite file (one file may serve several machines)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit: each add/mark is its own durable transaction. The busy timeout is set at
            # connect: switching to WAL takes a lock, and sim-fleet's processes open one file at once.
            self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"{self.path}: cannot open the MQTT outbox: {exc}") from exc

    def add(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Store a message to send; returns its id."""
        try:
            cur = self._db.execute("INSERT INTO outbox (topic, payload, qos, created_at) VALUES (?, ?, ?, ?)",
                                   (topic, payload, qos, time.time()))
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: cannot store an MQTT message: {exc}") from exc
        return int(cur.lastrowid or 0)

    def pending(self, topic_prefix: str = "", limit: int = 100) -> list[OutboxMessage]:
        """Undelivered messages (under `topic_prefix`), oldest first."""
        rows = self._db.execute(
            "SELECT id, topic, payload, qos FROM outbox WHERE delivered_at IS NULL "
            "AND substr(topic, 1, ?) = ? ORDER BY id LIMIT ?",
            (len(topic_prefix), topic_prefix, limit)).fetchall()
        return [OutboxMessage(int(r[0]), str(r[1]), bytes(r[2]), int(r[3])) for r in rows]

    def mark_delivered(self, message_id: int) -> None:
        self._db.execute("UPDATE outbox SET delivered_at = ? WHERE id = ?", (time.time(), message_id))

    def count_pending(self, topic_prefix: str = "") -> int:
        row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND substr(topic, 1, ?) = ?",
                               (len(topic_prefix), topic_prefix)).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()
