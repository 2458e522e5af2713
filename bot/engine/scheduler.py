"""Admission to the upstream: at most `max_running` tasks running there and `max_per_hour`
created per rolling hour (the account's limits), fair across chats.

The queue itself is in SQLite (tasks in `pending`); this is its in-memory order, rebuilt
at start-up from the rows. Chats take turns (round robin), each chat's tasks in the order
asked, so one chat sending fifty prompts does not starve the others.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class Withdrawn(Exception):
    """The task left the line before its turn (it was cancelled)."""


class Scheduler:
    def __init__(
        self,
        *,
        max_running: int,
        max_per_hour: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_running = max_running
        self._max_per_hour = max_per_hour
        self._clock = clock
        self._running: set[int] = set()
        self._created: deque[float] = deque()  # creation times within the last hour
        self._waiting: OrderedDict[int, deque[int]] = OrderedDict()  # chat → its task ids
        self._admitted: dict[int, asyncio.Future[None]] = {}
        self._paused_until = 0.0
        self._wake: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()

    # --- what the engine tells it ------------------------------------------------------------

    def restore(self, *, running: list[int], created_at: list[float]) -> None:
        """Start-up: tasks already running upstream, and when this hour's were created."""
        self._running.update(running)
        self._created.extend(sorted(t for t in created_at if t > self._clock() - 3600))

    async def admit(self, task_id: int, chat_id: int) -> None:
        """Wait for this task's turn; on return it holds a running slot."""
        if task_id in self._running:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._admitted[task_id] = future
        queue = self._waiting.setdefault(chat_id, deque())
        queue.append(task_id)
        # Task ids grow with time: keep each chat's queue in the order asked, also when a
        # restart enqueues them in whatever order their workers start.
        self._waiting[chat_id] = deque(sorted(queue))
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            self._forget(task_id, chat_id)
            raise

    def release(self, task_id: int) -> None:
        """The upstream is done with this task (or never took it): its slot is free."""
        self._running.discard(task_id)
        self._dispatch()

    def withdraw(self, task_id: int, chat_id: int) -> bool:
        """Take a waiting task out of the line (cancelled); True if it was waiting."""
        future = self._admitted.get(task_id)
        if future is None or future.done():
            return False
        self._forget(task_id, chat_id)
        future.set_exception(Withdrawn())
        self._dispatch()
        return True

    def slow_down(self, seconds: float) -> None:
        """The upstream said too many requests: admit nothing for `seconds`."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._schedule_wake(seconds)

    # --- what it tells ------------------------------------------------------------------------

    def position(self, task_id: int) -> int | None:
        """1 for the next task to be admitted; None if it is not waiting."""
        for place, waiting in enumerate(self._order(), start=1):
            if waiting == task_id:
                return place
        return None

    async def changed(self) -> None:
        """Wait for the line to move (positions may have changed)."""
        await self._changed.wait()

    # --- the turn-taking ----------------------------------------------------------------------

    def _order(self) -> list[int]:
        """The order waiting tasks will be admitted in: chats in turn, one task each."""
        queues = [list(queue) for queue in self._waiting.values()]
        order: list[int] = []
        depth = 0
        while any(depth < len(queue) for queue in queues):
            order.extend(queue[depth] for queue in queues if depth < len(queue))
            depth += 1
        return order

    def _dispatch(self) -> None:
        now = self._clock()
        while self._created and self._created[0] <= now - 3600:
            self._created.popleft()
        moved = False
        while self._waiting and len(self._running) < self._max_running:
            if now < self._paused_until:
                self._schedule_wake(self._paused_until - now)
                break
            if len(self._created) >= self._max_per_hour:
                self._schedule_wake(self._created[0] + 3600 - now)
                break
            chat_id, queue = next(iter(self._waiting.items()))
            task_id = queue.popleft()
            # This chat had its turn: it goes to the back of the line of chats.
            del self._waiting[chat_id]
            if queue:
                self._waiting[chat_id] = queue
            self._running.add(task_id)
            self._created.append(now)
            future = self._admitted.pop(task_id)
            if not future.done():
                future.set_result(None)
            moved = True
        if moved:
            self._changed.set()
            self._changed = asyncio.Event()

    def _forget(self, task_id: int, chat_id: int) -> None:
        self._admitted.pop(task_id, None)
        queue = self._waiting.get(chat_id)
        if queue is not None and task_id in queue:
            queue.remove(task_id)
            if not queue:
                del self._waiting[chat_id]
            self._changed.set()
            self._changed = asyncio.Event()

    def _schedule_wake(self, delay: float) -> None:
        if self._wake is not None:
            self._wake.cancel()
        self._wake = asyncio.get_running_loop().call_later(max(0.0, delay), self._dispatch)
