"""A leaky bucket whose waiting calls leave by priority.

aiolimiter's `AsyncLimiter` (what PTB's rate limiter is built on) lets waiting calls go in
the order they came. Under Telegram's flood limits that puts a finished album behind every
status message queued before it; here the album goes first. And a best-effort call never
takes the bucket's last place, so a result that becomes ready at any moment finds room.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable

# Priorities: lower leaves first.
INTERACTIVE = -1  # answers to button presses and what they need (a person is waiting)
URGENT = 0  # results, replies to commands
BEST_EFFORT = 1  # status messages, their edits, chat actions


class LeakyBucket:
    """The arithmetic of a leaky bucket, on whatever clock the caller reads: it holds at
    most `capacity` calls and drains at `capacity / period` a second."""

    def __init__(self, capacity: float, period: float) -> None:
        self.capacity = capacity
        self.rate = capacity / period
        self._level = 0.0
        self._updated: float | None = None

    def level(self, now: float) -> float:
        if self._updated is not None:
            self._level = max(0.0, self._level - (now - self._updated) * self.rate)
        self._updated = now
        return self._level

    def room_in(self, now: float, *, keep: float = 0) -> float:
        """Seconds from `now` until one more call fits, leaving `keep` places free."""
        over = self.level(now) + 1 - (self.capacity - keep)
        return over / self.rate if over > 1e-9 else 0.0  # (float dust is no wait)

    def take(self, now: float) -> None:
        self._level = self.level(now) + 1

    def hold(self, now: float, seconds: float) -> None:
        """No call fits for `seconds` from `now` (then one does, and the pace goes on)."""
        self._level = max(self.level(now), self.capacity - 1 + seconds * self.rate)


class PriorityPace:
    """At most `capacity` calls at once, refilled at `capacity` per `period` seconds (the
    bucket `AsyncLimiter(capacity, period)` is); those that must wait leave by priority,
    then in order of arrival. Best-effort calls leave one place free when there are two or
    more, for the urgent call that may come next.

    A call that must also pass another pace (a chat's message, then the limit on all chats)
    names it as `then`: it waits for that at the head of this queue, and takes its place
    here only when it leaves. Were it to take its place first, calls of one chat delayed by
    the other pace would leave together, breaking this one."""

    def __init__(self, capacity: float, period: float) -> None:
        self._bucket = LeakyBucket(capacity, period)
        self._keep_for_urgent = 1.0 if capacity >= 2 else 0.0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._held = False  # a call at the head waits for its `then`: nobody else goes
        self._closed: Exception | None = None

    @property
    def waiting(self) -> int:
        return sum(1 for *_, future in self._waiting if not future.done())

    async def acquire(
        self, priority: int = URGENT, *, then: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Wait for this call's turn (and then for `then`, holding the turn)."""
        if self._closed is not None:
            raise self._closed
        loop = asyncio.get_running_loop()
        free = not self._waiting and not self._held
        if not (free and self._bucket.room_in(loop.time(), keep=self._keep(priority)) == 0):
            future: asyncio.Future[None] = loop.create_future()
            heapq.heappush(self._waiting, (priority, next(self._arrivals), future))
            self._release()
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._held = False  # let in, then cancelled before it went: unused
                    self._release()
                raise
        self._held = True
        try:
            if then is not None:
                await then()
            self._bucket.take(loop.time())
        finally:
            self._held = False
            self._release()

    def hold(self, seconds: float) -> None:
        """Nobody leaves for `seconds` (Telegram asked this chat to wait that long)."""
        self._bucket.hold(asyncio.get_running_loop().time(), seconds)
        self._release()

    def close(self, error: Exception) -> None:
        """Stop: every call waiting for its turn, and every later one, gets `error`."""
        self._closed = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for *_, future in self._waiting:
            if not future.done():
                future.set_exception(error)
        self._waiting.clear()

    def _keep(self, priority: int) -> float:
        return self._keep_for_urgent if priority >= BEST_EFFORT else 0.0

    def _release(self) -> None:
        """Let in the first waiting call if the bucket has room; come back when it has."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held or self._closed is not None:
            return  # the call at the head releases the next when it goes
        loop = asyncio.get_running_loop()
        while self._waiting:
            priority, _, future = self._waiting[0]
            if future.done():  # its caller was cancelled
                heapq.heappop(self._waiting)
                continue
            room_in = self._bucket.room_in(loop.time(), keep=self._keep(priority))
            if room_in > 0:
                self._timer = loop.call_later(room_in, self._release)
                return
            heapq.heappop(self._waiting)
            self._held = True
            future.set_result(None)
            return
