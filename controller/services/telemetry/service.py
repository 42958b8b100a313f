"""The MQTT service: runs beside the core, publishes what the core does, and feeds remote
commands into the core's `execute` (through its `CoreView`, controller/services/core_view.py).

The core never waits on the network. Between them:
- telemetry: a sampler reads `core.latest` (wall time, `sample_hz`), batches the samples,
  and every 1/`telemetry_hz` s puts a batch into a bounded `DropOldestQueue`; while the
  broker is away the oldest batches are dropped and counted (`dropped_batches`);
- events: the core's `EventBus` subscription (bounded, drop-oldest); session summaries from
  it go into the SQLite `Outbox` and are marked delivered only on the broker's PUBACK;
- records: the core's 1 Hz `record` events, kept by an `EventBus` listener (none dropped)
  and put into the outbox as `SessionRecords` chunks just before the session's summary.

The connection is an explicit reconnect loop with bounded exponential back-off (aiomqtt's
recommended pattern); each connection publishes `online` (retained; the will is `offline`),
the retained state, optional Home Assistant discovery, then runs the publishers and the
command handler until the connection fails. A clean stop publishes `offline` itself,
because a clean disconnect does not fire the will.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt

from controller.core.channel import CoreStatus
from controller.core.events import Event, Subscription
from controller.services.athletes.feed import GymFeed
from controller.services.core_view import CoreView
from controller.services.telemetry.commands import handle_command
from controller.services.telemetry.discovery import discovery_messages
from controller.services.telemetry.dropqueue import DropOldestQueue
from controller.services.telemetry.outbox import Outbox, OutboxError, OutboxMessage
from controller.services.telemetry.payloads import EventPayload, StatePayload, TelemetryBatch, TelemetrySample
from controller.services.telemetry.records import RecordsCollector
from controller.services.telemetry.topics import OFFLINE, ONLINE, MachineTopics
from controller.settings.mqtt import MqttSection
from drivers.clock import Clock

log = logging.getLogger(__name__)

GOODBYE_TIMEOUT_S = 3.0
#: Session states in which a session is on (running or paused): its class is the machine's.
RECORDING_STATES = ("running", "paused")


def make_client(settings: MqttSection, identifier: str, will: aiomqtt.Will | None = None,
                timeout_s: float = 5.0, clean_session: bool | None = None) -> aiomqtt.Client:
    """An aiomqtt client for `settings` (TLS and credentials included); `clean_session=False`
    asks the broker for a persistent session (the gym hub's)."""
    tls_context = None
    if settings.tls:
        tls_context = ssl.create_default_context(cafile=settings.ca_file)
        if settings.tls_insecure:
            tls_context.check_hostname = False
            tls_context.verify_mode = ssl.CERT_NONE
    client = aiomqtt.Client(
        settings.host, settings.effective_port, username=settings.username, password=settings.password,
        identifier=identifier, will=will, keepalive=settings.keepalive_s, timeout=timeout_s,
        clean_session=clean_session, tls_context=tls_context,
        tls_insecure=settings.tls_insecure if settings.tls else None)
    # Many QoS 1 messages in flight after an outage are normal here, not a warning.
    client.pending_calls_threshold = 10_000
    return client


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that an `await client.publish(...)` swallowed.

    aiomqtt waits for a publish with `asyncio.wait_for`, which on Python 3.11 returns the
    result, and drops the cancel, when the publish completes in the same loop iteration as
    the task is cancelled (fixed in 3.12). A sender loop would then wait for its next message
    for ever and its stop, the session's end and the process's exit with it, hang: seen as
    `sim-fleet` and SIGTERM runs that never ended on a busy machine. Each sender loop calls
    this after a publish; only while the cancel is still pending does it raise.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class MqttTelemetry:
    """One machine's MQTT link. Use an instance as a runtime service: `await svc(core)`."""

    def __init__(self, settings: MqttSection, outbox: Outbox, *, client_id: str | None = None,
                 feed: GymFeed | None = None, sample_clock: Clock | None = None) -> None:
        self.settings = settings
        self.outbox = outbox
        self.client_id = client_id
        #: Where the sampler's waits end (None: asyncio's timer, every 1/sample_hz s of wall
        #: time). A fleet of machines in one process gives each machine's sampler a clock that
        #: ends its waits on a phase of its own (fleet_ticker.py `PhaseClock`), so that 40
        #: samplers do not land wherever their timers fall, between the control cycles.
        self.sample_clock = sample_clock
        #: The hub's roster and class leaderboards for the console (None: not followed).
        self.feed = feed
        self.telemetry: DropOldestQueue[bytes] = DropOldestQueue(settings.queue_size)
        self.events: DropOldestQueue[bytes] = DropOldestQueue(settings.event_queue_size)
        self.connected = asyncio.Event()
        self.connections = 0
        self.connect_failures = 0
        self.commands_handled = 0
        self.batches_sent = 0
        self._seq = 0
        self._outbox_ready = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._last_state: dict[str, Any] | None = None
        self._core: CoreView | None = None
        self._topics: MachineTopics | None = None
        self._sub: Subscription | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._faults_seen = 0
        self._bus_has_faults = False
        self._records = RecordsCollector()
        self._event_sid = ""  # the session that segment events belong to
        self._pump: asyncio.Task[None] | None = None
        self._taking: asyncio.Future[None] | None = None  # the event the pump is handling

    # --- the service ------------------------------------------------------------------
    async def __call__(self, core: CoreView) -> None:
        self._core = core
        machine = core.info.config.machine
        self._topics = MachineTopics(self.settings.prefix, machine.site, machine.name)
        self._sub = core.events.subscribe(self.settings.event_queue_size)
        core.events.listeners.append(self._records.on_event)
        if self.outbox.count_pending(self._topics.base):
            self._outbox_ready.set()  # left over from an earlier run: send first
        self._pump = asyncio.create_task(self._event_pump())
        workers = [asyncio.create_task(self._sample_loop()), self._pump]
        try:
            await self._connection_loop()
        except Exception:
            # A bug here must not pass silently: the runtime only cancels services at the end.
            log.exception("MQTT service stopped; the control loop keeps running without MQTT")
            raise
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._taking is not None:  # a summary being stored when the pump stopped
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._taking
            core.events.unsubscribe(self._sub)
            core.events.listeners.remove(self._records.on_event)

    def stats(self) -> dict[str, int]:
        """Link health for reports: connections, losses, what is still waiting."""
        return {
            "connections": self.connections, "connect_failures": self.connect_failures,
            "telemetry_batches_sent": self.batches_sent, "telemetry_batches_dropped": self.telemetry.dropped,
            "events_dropped": self.events.dropped + (self._sub.dropped if self._sub else 0),
            "commands_handled": self.commands_handled,
            "summaries_pending": self.outbox.count_pending(self._topics.base if self._topics else ""),
        }

    @property
    def topics(self) -> MachineTopics:
        assert self._topics is not None, "the service has not started"
        return self._topics

    @property
    def core(self) -> CoreView:
        assert self._core is not None, "the service has not started"
        return self._core

    # --- connection -------------------------------------------------------------------
    async def _connection_loop(self) -> None:
        backoff_s = self.settings.reconnect_min_s
        identifier = self.client_id or f"millctl-{self.topics.site}-{self.topics.machine}-{uuid.uuid4().hex[:6]}"
        will = aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True)
        while True:
            client = make_client(self.settings, identifier, will)
            try:
                async with client:
                    self.connections += 1
                    backoff_s = self.settings.reconnect_min_s
                    if self.connect_failures:
                        log.warning("MQTT broker %s:%d reachable again", self.settings.host,
                                    self.settings.effective_port)
                    self.connect_failures = 0
                    try:
                        await self._serve(client)
                    except asyncio.CancelledError:
                        await self._goodbye(client)
                        raise
            except* aiomqtt.MqttError as group:
                self.connect_failures += 1
                # The first failure loudly, repeats quietly (they are the same outage).
                level = logging.WARNING if self.connect_failures == 1 else logging.DEBUG
                log.log(level, "MQTT broker %s:%d: %s; retrying with back-off up to %.0f s",
                        self.settings.host, self.settings.effective_port, group.exceptions[0],
                        self.settings.reconnect_max_s)
            finally:
                self.connected.clear()
            await asyncio.sleep(backoff_s * random.uniform(0.8, 1.2))
            backoff_s = min(backoff_s * 2, self.settings.reconnect_max_s)

    async def _serve(self, client: aiomqtt.Client) -> None:
        topics = self.topics
        # Listen first, then say "online": a client that sends a command the moment it sees
        # "online" must be heard (commands that arrive meanwhile wait in client.messages).
        await client.subscribe(topics.cmd_filter, qos=1)
        if self.feed is not None:
            await client.subscribe(topics.roster, qos=1)
            await client.subscribe(topics.leaderboard_filter, qos=0)
        await client.publish(topics.status, ONLINE, qos=1, retain=True)
        await self._publish_state(client, force=True)
        if self.settings.ha_discovery:
            for topic, payload in discovery_messages(topics, self.settings.ha_prefix):
                await client.publish(topic, payload, qos=1, retain=True)
        self.connected.set()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._send_telemetry(client))
            group.create_task(self._send_events(client))
            group.create_task(self._send_outbox(client))
            group.create_task(self._send_state(client))
            group.create_task(self._serve_commands(client))

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """Clean stop: the last events and summaries, the final state, then `offline`."""
        await self._drain_events()
        try:
            async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                await self._flush_outbox(client)
                while len(self.events):
                    await client.publish(self.topics.event, self.events.pop(), qos=1)
                await self._publish_state(client)
                await client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
        except (TimeoutError, aiomqtt.MqttError) as exc:
            log.warning("MQTT: could not say goodbye cleanly (%s); the broker's last will says offline", exc)

    # --- publishers -------------------------------------------------------------------
    async def _send_telemetry(self, client: aiomqtt.Client) -> None:
        while True:
            payload = await self.telemetry.wait()
            await client.publish(self.topics.telemetry, payload, qos=0)
            self.telemetry.pop()
            self.batches_sent += 1
            raise_if_cancelled()

    async def _send_events(self, client: aiomqtt.Client) -> None:
        while True:
            payload = await self.events.wait()
            await client.publish(self.topics.event, payload, qos=1)
            self.events.pop()
            raise_if_cancelled()

    async def _send_outbox(self, client: aiomqtt.Client) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            await self._flush_outbox(client)
            raise_if_cancelled()

    async def _flush_outbox(self, client: aiomqtt.Client) -> None:
        await self._wait_inflight()
        while batch := await self.outbox.pending_async(self.topics.base):
            for message in batch:
                # Shielded: a stop while the PUBACK is on its way must not leave a message
                # sent but unmarked (the goodbye flush would send it a second time).
                self._inflight = asyncio.ensure_future(self._deliver(client, message))
                self._inflight.add_done_callback(_retrieve)
                await asyncio.shield(self._inflight)

    async def _deliver(self, client: aiomqtt.Client, message: OutboxMessage) -> None:
        # publish() returns on the broker's PUBACK (QoS 1): only then is it delivered.
        await client.publish(message.topic, message.payload, qos=message.qos)
        await self.outbox.mark_delivered_async(message.id)

    async def _wait_inflight(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            with contextlib.suppress(aiomqtt.MqttError):
                await self._inflight

    async def _send_state(self, client: aiomqtt.Client) -> None:
        while True:
            await self._state_changed.wait()
            self._state_changed.clear()
            await self._publish_state(client)
            raise_if_cancelled()

    async def _publish_state(self, client: aiomqtt.Client, force: bool = False) -> None:
        state = self._state()
        if force or state != self._last_state:
            payload = StatePayload(**state, updated_at=time.time())
            await client.publish(self.topics.state, payload.model_dump_json(), qos=1, retain=True)
            self._last_state = state

    async def _serve_commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = str(message.topic)
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            if self._feed_message(topic, payload):
                continue
            name = topic.rsplit("/", 1)[-1]
            ack = await handle_command(self.core.execute, self.topics.machine, name, payload,
                                       self.core.status.session_state, retained=message.retain)
            self.commands_handled += 1
            await client.publish(self.topics.ack(name), ack.model_dump_json(), qos=1)
            self._check_state()
            raise_if_cancelled()

    def _feed_message(self, topic: str, payload: bytes) -> bool:
        """A roster or leaderboard from the hub (True), or not one (a command)."""
        feed = self.feed
        if feed is None:
            return False
        if topic == self.topics.roster:
            feed.update_roster(payload)
            return True
        head = f"{self.topics.prefix}/{self.topics.site}/class/"
        if topic.startswith(head) and topic.endswith("/leaderboard"):
            feed.update_leaderboard(payload)
            return True
        return False

    # --- producers (never touch the network) ------------------------------------------
    def _state(self, status: CoreStatus | None = None) -> dict[str, Any]:
        status = status if status is not None else self.core.status
        snap = self.core.latest
        athlete = status.athlete
        group_class = status.group_class
        if group_class is not None and not group_class.armed and status.session_state not in RECORDING_STATES:
            group_class = None  # its session has ended: the machine is no longer in the class
        return {
            "athlete": athlete.id if athlete else None, "athlete_name": athlete.name if athlete else None,
            "class_id": group_class.class_id if group_class else None,
            "start_at": group_class.start_at if group_class else None,
            "started_at": status.session_started_at or None,
            "machine": self.topics.machine, "site": self.topics.site, "session_id": status.session_id,
            "session_state": status.session_state, "mode": status.mode, "target": status.target,
            "workout": snap.workout if snap is not None else None,
            "segment": snap.segment if snap is not None else None,
            # Faults still holding (the safety record marks ended ones `active: false`).
            "faults": [dict(f) for f in status.active_faults],
        }

    def _check_state(self, status: CoreStatus | None = None) -> None:
        if self._state(status) != self._last_state:
            self._state_changed.set()

    async def _sample_loop(self) -> None:
        """Sample the core's snapshot in wall time; queue a batch every 1/telemetry_hz s.

        One `core.status` per sample serves the state check, the fault poll and the batch: an
        in-process core builds it on demand (its loop report, its fault records), and three of
        them per sample were most of the sampler's time in a 40-machine `sim-fleet`."""
        sample_period_s = 1.0 / max(self.settings.sample_hz, self.settings.telemetry_hz)
        batch_period_s = 1.0 / self.settings.telemetry_hz
        clock = self.sample_clock
        samples: list[TelemetrySample] = []
        last_t_s: float | None = None
        now = clock.now_s() if clock is not None else time.monotonic()
        next_sample_s = now + sample_period_s
        next_batch_s = now + batch_period_s
        while True:
            if clock is None:
                await asyncio.sleep(sample_period_s)
                now = time.monotonic()
            else:
                # On deadlines (start + k × period): the clock may end a wait later than asked
                # (on its phase), never so that a sample is lost or the rate drifts.
                await clock.sleep_until(next_sample_s)
                now = clock.now_s()
                next_sample_s += sample_period_s
                if now >= next_sample_s:  # a stall: skip the samples already past
                    next_sample_s += (int((now - next_sample_s) / sample_period_s) + 1) * sample_period_s
            snap = self.core.latest
            if snap is not None and snap.t_s != last_t_s:
                last_t_s = snap.t_s
                samples.append(_sample(snap))
            status = self.core.status
            self._check_state(status)
            self._poll_faults(status)
            if now >= next_batch_s - 1e-9:
                next_batch_s += batch_period_s
                self._queue_batch(samples, status)
                samples = []

    def _queue_batch(self, samples: list[TelemetrySample], status: CoreStatus | None = None) -> None:
        status = status if status is not None else self.core.status
        self._seq += 1
        batch = TelemetryBatch(
            machine=self.topics.machine, site=self.topics.site, seq=self._seq, sent_at=time.time(),
            session_id=status.session_id, session_state=status.session_state, mode=status.mode,
            dropped_batches=self.telemetry.dropped, samples=samples)
        self.telemetry.put(batch.model_dump_json().encode())

    async def _event_pump(self) -> None:
        assert self._sub is not None
        while True:
            event = await self._sub.get()
            # Shielded: a stop while a summary is being stored lets it (and its event) finish;
            # the goodbye waits for it before it drains the rest and flushes the outbox.
            self._taking = asyncio.ensure_future(self._take_event(event))
            await asyncio.shield(self._taking)

    async def _drain_events(self) -> None:
        """The events still queued, in order, once the pump has stopped (the goodbye's)."""
        assert self._sub is not None
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._taking is not None and not self._taking.done():
            await self._taking
        while not self._sub.queue.empty():
            await self._take_event(self._sub.queue.get_nowait())

    def _poll_faults(self, status: CoreStatus | None = None) -> None:
        """Publish the core's new fault records as `fault` events, unless the core's event bus
        already carries them (then it is the single source)."""
        status = status if status is not None else self.core.status
        new = status.fault_count - self._faults_seen
        self._faults_seen = status.fault_count
        if self._bus_has_faults or new <= 0:
            return
        for entry in status.faults[-new:]:
            t_s = entry.get("t_s")
            event = EventPayload(machine=self.topics.machine, kind="fault", at=time.time(), data=dict(entry),
                                 t_s=t_s if isinstance(t_s, int | float) else self.core.clock.now_s())
            self.events.put(event.model_dump_json().encode())

    async def _take_event(self, event: Event) -> None:
        """One event from the core: its outbox messages stored first (a session's records and
        summary, one transaction, off the event loop), then its own message queued."""
        stores, payload = self._on_event(event)
        if stores:
            try:
                await self.outbox.add_many_async(stores)
            except OutboxError as exc:
                log.error("session %s: summary NOT stored for MQTT delivery: %s",
                          event.data["summary"].get("session_id"), exc)
            self._outbox_ready.set()
        self.events.put(payload)
        self._check_state()

    def _on_event(self, event: Event) -> tuple[list[tuple[str, bytes, int]], bytes]:
        """An event's outbox messages (to store before any attempt to send them) and its
        `event` message."""
        if event.kind == "fault":
            self._bus_has_faults = True
        data = dict(event.data)
        if event.kind == "session" and data.get("state") == "running":
            self._event_sid = str(data.get("session_id", ""))
        elif event.kind == "segment" and data.get("event") == "end":
            self._records.on_lap(self._event_sid or self.core.status.session_id, data)
        summary = data.pop("summary", None)
        stores: list[tuple[str, bytes, int]] = []
        if summary is not None:
            # Stored before any attempt to send: survives an outage and a restart. The records
            # go first (same outbox, oldest first): a reader has them when the summary comes.
            sid = str(summary.get("session_id", ""))
            stores = [(self.topics.records, chunk.model_dump_json().encode(), 1)
                      for chunk in self._records.finish(self.topics.machine, self.topics.site, sid)]
            stores.append((self.topics.session, json.dumps(summary).encode(), 1))
            data["summary_topic"] = self.topics.session
        payload = EventPayload(machine=self.topics.machine, kind=event.kind, t_s=event.t_s,
                               at=time.time(), data=data)
        return stores, payload.model_dump_json().encode()


def _retrieve(future: asyncio.Future[None]) -> None:
    """Consume a delivery's outcome (a failure just leaves the message pending)."""
    if not future.cancelled():
        future.exception()


def _sample(snap: Any) -> TelemetrySample:
    totals = snap.totals
    stride = totals.stride_live()
    return TelemetrySample(
        t_s=round(snap.t_s, 3), speed_mps=round(snap.motion.speed_mps, 3),
        distance_m=round(totals.distance_m, 2), forward_m=round(totals.forward_m, 2),
        backward_m=round(totals.backward_m, 2), power_w=round(totals.power_w, 1),
        force_n=round(totals.force_n, 1), work_j=round(totals.work_j, 1),
        brake_current_ma=snap.sample.brake_current_ma,
        setpoint_ma=snap.setpoint_ma, saturated=snap.demand.saturated,
        heart_rate_bpm=snap.sample.heart_rate_bpm, link_ok=snap.link_ok,
        cadence_spm=stride["cadence_spm"], step_length_m=stride["step_length_m"],
        balance_left_pct=stride["balance_left_pct"])


OUTBOX_FILE = "mqtt-outbox.sqlite3"


def mqtt_service(section: MqttSection, url: str | None, data_dir: Path,
                 feed: GymFeed | None = None) -> MqttTelemetry | None:
    """The MQTT service for `millctl run`: `--mqtt URL` overrides the config's `[mqtt]`
    section; None when MQTT is neither asked for nor enabled. The outbox lives in the data dir."""
    if url is not None:
        section = section.with_url(url)
    if not section.enabled:
        return None
    return MqttTelemetry(section, Outbox(Path(data_dir) / OUTBOX_FILE), feed=feed)
