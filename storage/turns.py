"""Whose statement runs next on a busy database: what frees or fills an upstream slot goes
ahead of the rest.

SQLite runs a process's statements one at a time (one writer, one connection). Under
load a hundred statements wait their turn, and the few an upstream slot waits on (the
callback's look-up, the record of a finished task, the record of a create about to go)
would queue behind status notes and deliveries: the slot idles for the whole line. Code
made through a database's `ahead_of_the_line()` view (`Database.ahead_of_the_line`, and the
repositories' views over it) is served before all that waits without it; each group keeps
its own order. Which statements go ahead is said where they are made, never inherited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType


class TurnLock:
    """An asyncio lock with two lines: waiters `ahead` first, then the rest,
    each first come, first served. Released, it passes straight to the next waiter, so no
    newcomer slips in between."""

    def __init__(self) -> None:
        self._held = False
        self._ahead: deque[asyncio.Future[None]] = deque()
        self._behind: deque[asyncio.Future[None]] = deque()

    def waiting(self) -> int:
        return len(self._ahead) + len(self._behind)

    @asynccontextmanager
    async def turn(self, *, ahead: bool) -> AsyncIterator[None]:
        """Held inside the block; taken before every waiter not `ahead` if `ahead`."""
        await self.acquire(ahead=ahead)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, *, ahead: bool = False) -> None:
        if not self._held and not self._ahead and not self._behind:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._ahead if ahead else self._behind
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
