"""Events from the loop to whoever listens (MQTT, web console, session store, logs).

The loop publishes without ever waiting: each subscriber has a bounded queue, and when a
slow subscriber's queue is full its oldest event is dropped and counted. Kinds in use:
`session` (started/paused/resumed/finished, with the summary when finished), `segment`,
`fault`, `mode`.
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


class Subscription:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    async def get(self) -> Event:
        return await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        #: Called with each event as it is published (the core process forwards them to the
        #: channel this way): quick, never raising.
        self.listeners: list[Callable[[Event], None]] = []

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        sub = Subscription(maxsize)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def publish(self, event: Event) -> None:
        for sub in self._subscribers:
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)
        for listener in self.listeners:
            listener(event)
