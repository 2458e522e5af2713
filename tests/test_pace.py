"""The priority pace behind flood control: a leaky bucket whose queue is ordered."""

from __future__ import annotations

import asyncio

from bot.pace import BEST_EFFORT, URGENT, PriorityPace


async def test_calls_within_capacity_go_at_once_then_at_the_pace() -> None:
    pace = PriorityPace(2, 0.2)  # two at once, then one every 0.1 s
    loop = asyncio.get_running_loop()
    started = loop.time()
    moments = []
    for _ in range(5):
        await pace.acquire()
        moments.append(loop.time() - started)
    assert moments[1] < 0.09  # sooner than the pace would let it: the bucket had room
    assert moments[4] >= 0.25  # three more at 0.1 s each


async def test_waiting_urgent_calls_leave_before_best_effort_ones() -> None:
    pace = PriorityPace(1, 0.05)
    await pace.acquire()  # the bucket is full: everyone after this waits
    order: list[str] = []

    async def call(name: str, priority: int) -> None:
        await pace.acquire(priority)
        order.append(name)

    calls = [asyncio.create_task(call(f"status {i}", BEST_EFFORT)) for i in range(3)]
    await asyncio.sleep(0)
    calls += [asyncio.create_task(call(f"album {i}", URGENT)) for i in range(2)]
    await asyncio.gather(*calls)
    assert order == ["album 0", "album 1", "status 0", "status 1", "status 2"]


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    pace = PriorityPace(1, 0.1)
    await pace.acquire()
    loop = asyncio.get_running_loop()
    started = loop.time()
    withdrawn = asyncio.create_task(pace.acquire(URGENT))
    waiting = asyncio.create_task(pace.acquire(BEST_EFFORT))
    await asyncio.sleep(0.01)
    assert pace.waiting == 2
    withdrawn.cancel()
    await waiting
    assert loop.time() - started < 0.19  # the withdrawn call's turn (0.1 s), not the next
    assert pace.waiting == 0
