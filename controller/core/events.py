"""Events from the loop to whoever listens (MQTT, web console, session store, logs).

The loop publishes without ever waiting: each subscriber has a bounded queue, and when a
slow subscriber's queue is full its oldest event is dropped and counted. Kinds in use:
`session` (started/paused/resumed/finished, with the summary when finished), `segment`,
`fault`, `mode`, and `record` (one a second of session time: the session's data,
controller/core/records.py).

Records are a stream, not a change of state: a subscription gets them only if it asks
(`subscribe(records=True)`), so a display's small queue is never filled with them. Whoever
must not lose one (the session recorder, the MQTT records) takes them in a listener, which
sees every event as it is published and drops nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    kind: str
    t_s: float
    data: dict[str, Any] = field(default_factory=dict)


#: Event kinds a subscription receives only when it asks for them.
STREAM_KINDS = frozenset({"record"})


class Subscription:
    def __init__(self, maxsize: int, records: bool = False) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.records = records

    async def get(self) -> Event:
        return await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        #: Called with each event as it is published (the core process forwards them to the
        #: channel this way; the recorder and MQTT take the records): quick, never raising.
        self.listeners: list[Callable[[Event], None]] = []

    def subscribe(self, maxsize: int = 1000, *, records: bool = False) -> Subscription:
        """A bounded queue of the events published from now on (`record` events only with
        `records`)."""
        sub = Subscription(maxsize, records)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def publish(self, event: Event) -> None:
        stream = event.kind in STREAM_KINDS
        for sub in self._subscribers:
            if stream and not sub.records:
                continue
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)
        for listener in self.listeners:
            listener(event)
