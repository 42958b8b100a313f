"""A bounded queue that never blocks the producer: when full, the oldest item goes (counted)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """FIFO of at most `maxsize` items; `put` never waits, `get` waits for an item."""

    def __init__(self, maxsize: int) -> None:
        self._items: deque[T] = deque()
        self.maxsize = maxsize
        self.dropped = 0
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._ready.set()

    def peek(self) -> T | None:
        return self._items[0] if self._items else None

    def pop(self) -> T:
        item = self._items.popleft()
        if not self._items:
            self._ready.clear()
        return item

    async def wait(self) -> T:
        """The oldest item, without removing it (remove with `pop` once it is sent)."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items[0]
