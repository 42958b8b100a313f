"""Link supervision: when is the board lost, and when to try it again.

The link is declared lost when no exchange has succeeded for `loss_after_s` (the configured
detection time) and the latest one failed; one bad frame is not a lost link. While lost,
reconnection attempts back off from one loop period, doubling up to `backoff_max_s`, so a
returning board is found again within about `backoff_max_s` without flooding a dead bus.
Pure bookkeeping on injected times: the loop does the I/O (see `SafetySupervisor`).
"""

from __future__ import annotations

import enum


class LinkState(enum.StrEnum):
    UP = "up"
    LOST = "lost"


class LinkSupervisor:
    """Tracks exchanges and decides when the link is lost and when to retry."""

    def __init__(self, loss_after_s: float, backoff_min_s: float, backoff_max_s: float) -> None:
        if loss_after_s <= 0 or backoff_min_s <= 0 or backoff_max_s < backoff_min_s:
            raise ValueError("link supervision needs loss_after_s > 0 and 0 < backoff_min_s <= backoff_max_s")
        self.loss_after_s = loss_after_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.state = LinkState.UP
        self.last_ok_s: float | None = None
        self.failures = 0  # consecutive failed exchanges
        self.lost_at_s: float | None = None
        self.attempts = 0  # reconnection attempts in this outage
        self._backoff_s = backoff_min_s
        self._next_attempt_s = 0.0

    @property
    def lost(self) -> bool:
        return self.state == LinkState.LOST

    def succeeded(self, now_s: float) -> float | None:
        """An exchange worked. Returns the outage length if this ends a lost link."""
        outage = None
        if self.state == LinkState.LOST and self.lost_at_s is not None:
            outage = now_s - self.lost_at_s
        self.state = LinkState.UP
        self.last_ok_s = now_s
        self.failures = 0
        self.attempts = 0
        self.lost_at_s = None
        self._backoff_s = self.backoff_min_s
        return outage

    def failed(self, now_s: float) -> bool:
        """An exchange failed. True when this failure makes the link lost."""
        self.failures += 1
        if self.state == LinkState.LOST:
            return False
        since = self.last_ok_s if self.last_ok_s is not None else now_s
        if now_s - since >= self.loss_after_s - 1e-9:
            self.state = LinkState.LOST
            self.lost_at_s = now_s
            self._next_attempt_s = now_s  # first attempt right away
            return True
        return False

    def attempt_due(self, now_s: float) -> bool:
        return self.state == LinkState.LOST and now_s >= self._next_attempt_s - 1e-9

    def attempt_failed(self, now_s: float) -> None:
        """A reconnection attempt failed: wait longer, up to the bound."""
        self.attempts += 1
        self._next_attempt_s = now_s + self._backoff_s
        self._backoff_s = min(self.backoff_max_s, self._backoff_s * 2.0)
