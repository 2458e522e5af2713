"""The database's line: what waits `ahead_of_the_line()` goes first (storage/turns.py)."""

from __future__ import annotations

import asyncio
import contextlib

from storage.turns import TurnLock, ahead_of_the_line


async def _take(lock: TurnLock, name: str, order: list[str], *, ahead: bool = False) -> None:
    with ahead_of_the_line() if ahead else contextlib.nullcontext():
        async with lock:
            order.append(name)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiters_ahead_of_the_line_go_first_each_line_in_its_order() -> None:
    lock = TurnLock()
    order: list[str] = []
    await lock.acquire()  # held: everyone below waits
    waiters = [
        asyncio.create_task(_take(lock, "note 1", order)),
        asyncio.create_task(_take(lock, "note 2", order)),
        asyncio.create_task(_take(lock, "slot 1", order, ahead=True)),
        asyncio.create_task(_take(lock, "note 3", order)),
        asyncio.create_task(_take(lock, "slot 2", order, ahead=True)),
    ]
    await _settle()
    assert lock.waiting() == 5
    lock.release()
    await asyncio.gather(*waiters)
    assert order == ["slot 1", "slot 2", "note 1", "note 2", "note 3"]
    assert lock.waiting() == 0


async def test_the_mark_reaches_tasks_started_inside_and_ends_with_the_block() -> None:
    lock = TurnLock()
    order: list[str] = []
    await lock.acquire()
    with ahead_of_the_line():
        inside = asyncio.create_task(_take(lock, "started inside", order))
    outside = asyncio.create_task(_take(lock, "started after", order))
    first = asyncio.create_task(_take(lock, "first come", order))
    await _settle()
    # "first come" came after "started after": the two outside keep their order.
    lock.release()
    await asyncio.gather(inside, outside, first)
    assert order == ["started inside", "started after", "first come"]


async def test_a_cancelled_waiter_never_holds_the_lock() -> None:
    lock = TurnLock()
    order: list[str] = []
    await lock.acquire()
    gone = asyncio.create_task(_take(lock, "cancelled", order, ahead=True))
    stays = asyncio.create_task(_take(lock, "stays", order))
    await _settle()
    gone.cancel()
    await _settle()
    assert lock.waiting() == 1
    lock.release()
    await stays
    assert order == ["stays"]
    assert gone.cancelled()
    await asyncio.wait_for(lock.acquire(), 1)  # free again


async def test_a_waiter_cancelled_as_its_turn_came_passes_the_turn_on() -> None:
    lock = TurnLock()
    order: list[str] = []
    await lock.acquire()
    unlucky = asyncio.create_task(_take(lock, "unlucky", order))
    next_one = asyncio.create_task(_take(lock, "next", order))
    await _settle()
    lock.release()  # the turn is handed to "unlucky"…
    unlucky.cancel()  # …which is cancelled before it runs
    await next_one
    assert order == ["next"]
    assert unlucky.cancelled()
    await asyncio.wait_for(lock.acquire(), 1)  # and nobody kept it
