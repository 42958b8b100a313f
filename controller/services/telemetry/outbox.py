"""A persistent outbox (SQLite) for messages that must not be lost: session summaries.

A message is stored before any attempt to send it and marked delivered only after the
broker acknowledged it (QoS 1 PUBACK). After a broker outage or a controller restart the
pending messages are sent again, byte for byte as recorded, oldest first. QoS 1 means "at
least once": if the process dies between the broker's ack and `mark_delivered`, the message
goes once more, so readers deduplicate on `session_id` (it is unique per session).

Every write is a commit, and a commit in WAL mode with `synchronous=FULL` waits for an fsync
(about 0.3 ms on the bench machine). The MQTT service runs in an event loop that may also run
control loops (`sim-fleet`: 40 machines in one process, each finishing a session into the
outbox), so it uses the `*_async` methods: the same operations, run by one thread for every
outbox of the process (SQLite lets go of the GIL while it waits), one after the other.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: The thread that runs the outboxes' SQLite work for the event loop (the `*_async` methods).
_IO = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqtt-outbox")

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
            # Used from the event loop's thread and the outbox thread, one at a time (`_lock`).
            self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"{self.path}: cannot open the MQTT outbox: {exc}") from exc
        self._lock = threading.Lock()

    def add(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Store a message to send; returns its id."""
        return self.add_many([(topic, payload, qos)])[0]

    def add_many(self, messages: Sequence[tuple[str, bytes, int]]) -> list[int]:
        """Store messages (topic, payload, qos) to send, in this order, in one transaction (one
        commit: a session's records and its summary); returns their ids."""
        now = time.time()
        ids: list[int] = []
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    for topic, payload, qos in messages:
                        cur = self._db.execute(
                            "INSERT INTO outbox (topic, payload, qos, created_at) VALUES (?, ?, ?, ?)",
                            (topic, payload, qos, now))
                        ids.append(int(cur.lastrowid or 0))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise OutboxError(f"{self.path}: cannot store an MQTT message: {exc}") from exc
        return ids

    def pending(self, topic_prefix: str = "", limit: int = 100) -> list[OutboxMessage]:
        """Undelivered messages (under `topic_prefix`), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos FROM outbox WHERE delivered_at IS NULL "
                "AND substr(topic, 1, ?) = ? ORDER BY id LIMIT ?",
                (len(topic_prefix), topic_prefix, limit)).fetchall()
        return [OutboxMessage(int(r[0]), str(r[1]), bytes(r[2]), int(r[3])) for r in rows]

    def mark_delivered(self, message_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET delivered_at = ? WHERE id = ?", (time.time(), message_id))

    def count_pending(self, topic_prefix: str = "") -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND substr(topic, 1, ?) = ?",
                (len(topic_prefix), topic_prefix)).fetchone()
        return int(row[0])

    # --- the same, off the event loop ------------------------------------------------------
    async def add_many_async(self, messages: Sequence[tuple[str, bytes, int]]) -> list[int]:
        return await _off_loop(self.add_many, messages)

    async def pending_async(self, topic_prefix: str = "", limit: int = 100) -> list[OutboxMessage]:
        return await _off_loop(self.pending, topic_prefix, limit)

    async def mark_delivered_async(self, message_id: int) -> None:
        await _off_loop(self.mark_delivered, message_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()


async def _off_loop(fn: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_IO, fn, *args)
