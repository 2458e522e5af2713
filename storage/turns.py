"""Whose statement runs next on a busy database: what frees or fills an upstream slot goes
ahead of the rest.

SQLite runs a process's statements one at a time (one writer, one connection). Under
load a hundred statements wait their turn, and the few an upstream slot waits on (the
callback's look-up, the record of a finished task, the record of a create about to go)
would queue behind status notes and deliveries: the slot idles for the whole line. Code
that runs inside `ahead_of_the_line()` is served before all that waits outside it; each
group keeps its own order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType

_urgent: ContextVar[bool] = ContextVar("ahead_of_the_line", default=False)


@contextmanager
def ahead_of_the_line() -> Iterator[None]:
    """The statements run inside (and in tasks started inside) go before those waiting
    without it."""
    token = _urgent.set(True)
    try:
        yield
    finally:
        _urgent.reset(token)


class TurnLock:
    """An asyncio lock with two lines: waiters `ahead_of_the_line()` first, then the rest,
    each first come, first served. Released, it passes straight to the next waiter, so no
    newcomer slips in between."""

    def __init__(self) -> None:
        self._held = False
        self._ahead: deque[asyncio.Future[None]] = deque()
        self._behind: deque[asyncio.Future[None]] = deque()

    def waiting(self) -> int:
        return len(self._ahead) + len(self._behind)

    async def acquire(self) -> None:
        if not self._held and not self._ahead and not self._behind:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._ahead if _urgent.get() else self._behind
        line.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed over just as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # perhaps already passed over
                    line.remove(turn)
            raise

    def release(self) -> None:
        for line in (self._ahead, self._behind):
            while line:
                turn = line.popleft()
                if not turn.done():
                    turn.set_result(None)  # still held: now by that waiter
                    return
        self._held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
