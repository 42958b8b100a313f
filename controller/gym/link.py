"""The hub's MQTT link: a persistent session that loses no finished session.

- A fixed client id with `clean_session=False` and QoS 1 subscriptions to `session` and
  `records`: while the hub is away the broker keeps what the machines finished.
- Those messages are acknowledged (PUBACK) only after the database committed them (paho's
  manual ack): a hub killed mid-write, or a database that is away, leaves them unacked and
  the broker sends them again. The store's inserts are idempotent, so "again" is harmless.
- Live topics (status, state, telemetry) are subscribed at QoS 0: they need no ack, are
  not queued for an absent hub, and never wait behind a slow database.

aiomqtt 2.x has no manual-ack option of its own; it is paho's (`manual_ack_set`, `ack`),
reached through the aiomqtt client's paho instance in `_paho` below, the one place that does.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import aiomqtt
import paho.mqtt.client as paho

from controller.gym.ingest import (
    LIVE_LEAVES,
    BadMessage,
    RecordsMessage,
    SessionMessage,
    Stored,
    decode_stored,
    feed_live,
)
from controller.gym.store import HubStore, HubStoreError, Ingested
from controller.services.telemetry.fleet import FleetTracker
from controller.services.telemetry.service import make_client
from controller.services.telemetry.topics import split_machine_topic
from controller.settings.mqtt import MqttSection

log = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = "millctl-gym-hub"
#: Messages committed in one transaction at most (a burst of finished sessions).
WRITE_BATCH = 200
RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0


def _paho(client: aiomqtt.Client) -> paho.Client:
    """The paho client inside aiomqtt (for manual acks, which aiomqtt 2.x does not wrap)."""
    return client._client


@dataclass
class LinkStats:
    """What the link has done, for logs, `/api/hub` and the bench."""

    connections: int = 0
    connect_failures: int = 0
    bad_messages: int = 0
    sessions_stored: int = 0
    duplicates: int = 0
    records_stored: int = 0
    write_failures: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class _Pending:
    client: aiomqtt.Client
    message: aiomqtt.Message
    stored: Stored


class HubLink:
    """Follows every machine under `settings.prefix`; feeds the tracker and the store."""

    def __init__(self, settings: MqttSection, tracker: FleetTracker, store: HubStore, *,
                 client_id: str = DEFAULT_CLIENT_ID, on_live: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self.tracker = tracker
        self.store = store
        self.client_id = client_id
        self.on_live = on_live
        self.stats = LinkStats()
        self.connected = asyncio.Event()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._client: aiomqtt.Client | None = None
        # One thread for the database: writes stay in order, SQLite sees one writer.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gym-db")

    async def run(self) -> None:
        """Until cancelled: the connection loop and the writer."""
        writer = asyncio.create_task(self._writer())
        try:
            await self._connection_loop()
        finally:
            writer.cancel()
            self._db_thread.shutdown(wait=False, cancel_futures=True)

    async def _connection_loop(self) -> None:
        backoff_s = self.settings.reconnect_min_s
        identifier = self.client_id or f"millctl-gym-{uuid.uuid4().hex[:8]}"
        prefix = self.settings.prefix
        while True:
            # The persistent session: what the broker keeps for this id while the hub is away.
            client = make_client(self.settings, identifier, clean_session=False)
            _paho(client).manual_ack_set(True)
            try:
                async with client:
                    self._client = client
                    self.stats.connections += 1
                    if self.stats.connect_failures:
                        log.warning("gym hub: MQTT broker %s:%d reachable again", self.settings.host,
                                    self.settings.effective_port)
                    self.stats.connect_failures = 0
                    backoff_s = self.settings.reconnect_min_s
                    for leaf in LIVE_LEAVES:
                        await client.subscribe(f"{prefix}/+/+/{leaf}", qos=0)
                    for leaf in ("records", "session"):
                        await client.subscribe(f"{prefix}/+/+/{leaf}", qos=1)
                    self.connected.set()
                    async for message in client.messages:
                        self._take(client, message)
            except aiomqtt.MqttError as exc:
                self.stats.connect_failures += 1
                level = logging.WARNING if self.stats.connect_failures == 1 else logging.DEBUG
                log.log(level, "gym hub: MQTT broker %s:%d: %s; retrying with back-off up to %.0f s",
                        self.settings.host, self.settings.effective_port, exc, self.settings.reconnect_max_s)
            finally:
                self.connected.clear()
                self._client = None
            await asyncio.sleep(backoff_s * random.uniform(0.8, 1.2))
            backoff_s = min(backoff_s * 2, self.settings.reconnect_max_s)

    def _take(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        where = split_machine_topic(self.settings.prefix, topic)
        try:
            if where is not None and where[2] in LIVE_LEAVES:
                feed_live(self.tracker, topic, payload)
                if self.on_live is not None:
                    self.on_live(where[0], where[1])
            else:
                self._queue.put_nowait(_Pending(client, message, decode_stored(self.settings.prefix, topic,
                                                                                payload)))
                return  # acked by the writer, after the commit
        except BadMessage as exc:
            self.stats.bad_messages += 1
            # The first ones loudly; a flood of them must not flood the log.
            level = logging.WARNING if self.stats.bad_messages <= 20 else logging.DEBUG
            log.log(level, "gym hub: ignored a message: %s", exc)
        self._ack(client, message)

    def _ack(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        # Only on the connection it came in on: after a reconnect the broker sends it again.
        if message.qos > 0 and client is self._client:
            _paho(client).ack(message.mid, message.qos)

    async def _writer(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < WRITE_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                done = await self._commit(batch)
            except HubStoreError:
                # The rows themselves were refused: find the message(s) at fault one by one,
                # so that one bad session never holds up the others.
                done = Ingested()
                for pending in batch:
                    try:
                        one = await self._commit([pending])
                    except HubStoreError as exc:
                        self.stats.bad_messages += 1
                        log.error("gym hub: dropped a message the database refuses: %s", exc)
                        continue
                    done = Ingested(done.new_sessions + one.new_sessions,
                                    done.duplicate_sessions + one.duplicate_sessions, done.records + one.records)
            self._account(done)
            for pending in batch:
                self._ack(pending.client, pending.message)

    async def _commit(self, batch: list[_Pending]) -> Ingested:
        """Commit `batch`, retrying with back-off while the database is away (nothing is acked
        meanwhile). Raises `HubStoreError` only when the data itself is refused."""
        retry_s = RETRY_MIN_S
        failed = False
        while True:
            try:
                done = await asyncio.get_running_loop().run_in_executor(self._db_thread, self._write, batch)
            except HubStoreError as exc:
                if not exc.retryable:
                    raise
                failed = True
                self.stats.write_failures += 1
                self.stats.last_error = str(exc)
                level = logging.ERROR if self.stats.write_failures == 1 or retry_s >= RETRY_MAX_S else logging.DEBUG
                log.log(level, "gym hub: %s; %d message(s) kept unacknowledged, retrying in %.1f s",
                        exc, len(batch), retry_s)
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, RETRY_MAX_S)
                continue
            if failed:
                log.warning("gym hub: the database takes writes again")
            return done

    def _account(self, done: Ingested) -> None:
        self.stats.sessions_stored += done.new_sessions
        self.stats.duplicates += done.duplicate_sessions
        self.stats.records_stored += done.records

    def _write(self, batch: list[_Pending]) -> Ingested:
        summaries = [(p.stored.summary, p.stored.site) for p in batch if isinstance(p.stored, SessionMessage)]
        chunks = [p.stored.chunk for p in batch if isinstance(p.stored, RecordsMessage)]
        return self.store.ingest(summaries, chunks)
