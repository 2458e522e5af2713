"""A leaky bucket whose waiting calls leave by priority.

aiolimiter's `AsyncLimiter` (what PTB's rate limiter is built on) lets waiting calls go in
the order they came. Under Telegram's flood limits that puts a finished album behind every
status message queued before it; here the album goes first.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

# Priorities: lower leaves first.
URGENT = 0  # results, replies to commands
BEST_EFFORT = 1  # status messages, their edits, chat actions


class PriorityPace:
    """At most `capacity` calls at once, refilled at `capacity` per `period` seconds (the
    bucket `AsyncLimiter(capacity, period)` is); those that must wait leave by priority,
    then in order of arrival."""

    def __init__(self, capacity: float, period: float) -> None:
        self._capacity = capacity
        self._rate = capacity / period
        self._level = 0.0
        self._updated = 0.0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return sum(1 for *_, future in self._waiting if not future.done())

    async def acquire(self, priority: int = URGENT) -> None:
        """Wait for this call's turn."""
        self._drain()
        if not self._waiting and self._level + 1 <= self._capacity:
            self._level += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrivals), future))
        self._release()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._level -= 1  # let in, then cancelled before it went: the turn is unused
                self._release()
            raise

    def _drain(self) -> None:
        now = asyncio.get_running_loop().time()
        self._level = max(0.0, self._level - (now - self._updated) * self._rate)
        self._updated = now

    def _release(self) -> None:
        """Let in every waiting call the bucket has room for; come back when it has more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._drain()
        while self._waiting:
            *_, future = self._waiting[0]
            if future.done():  # its caller was cancelled
                heapq.heappop(self._waiting)
                continue
            if self._level + 1 > self._capacity:
                room_in = (self._level + 1 - self._capacity) / self._rate
                self._timer = asyncio.get_running_loop().call_later(room_in, self._release)
                return
            heapq.heappop(self._waiting)
            self._level += 1
            future.set_result(None)
