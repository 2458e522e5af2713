"""The line in front of the upstream, on its own, on looptime's virtual clock: the caps,
chats taking turns, a 429's pause, places and withdrawals. (test_scheduler.py drives the
same through the whole bot.)"""

from __future__ import annotations

import asyncio

import pytest

from bot.engine.scheduler import Scheduler, Withdrawn

pytestmark = pytest.mark.looptime


async def _admitted_in_order(scheduler: Scheduler, tasks: list[tuple[int, int]]) -> list[int]:
    """Queue `tasks` (task id, chat id) at once; release each as soon as it is admitted."""
    order: list[int] = []

    async def one(task_id: int, chat_id: int) -> None:
        await scheduler.admit(task_id, chat_id)
        order.append(task_id)
        await asyncio.sleep(1)
        scheduler.release(task_id)

    await asyncio.gather(*(one(task_id, chat_id) for task_id, chat_id in tasks))
    return order


async def test_chats_take_turns_each_in_the_order_asked() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(max_running=1, max_per_hour=100, clock=loop.time)
    await scheduler.admit(0, 9)  # the upstream is busy with another chat's task
    # Meanwhile chat 1 asks three times, chat 2 twice, chat 3 once.
    tasks = [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 3)]
    line = asyncio.create_task(_admitted_in_order(scheduler, tasks))
    await asyncio.sleep(0.5)  # (virtual) every one of them is waiting in line
    scheduler.release(0)
    assert await line == [1, 4, 6, 2, 5, 3]


async def test_no_more_than_the_cap_at_once() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(max_running=2, max_per_hour=100, clock=loop.time)
    started = loop.time()
    await _admitted_in_order(scheduler, [(n, n) for n in range(1, 7)])
    assert loop.time() - started == pytest.approx(3.0)  # six tasks of 1 s, two at a time


async def test_the_hourly_cap_holds_the_rest_for_an_hour() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(max_running=10, max_per_hour=2, clock=loop.time)
    started = loop.time()
    moments: dict[int, float] = {}

    async def one(task_id: int) -> None:
        await scheduler.admit(task_id, task_id)
        moments[task_id] = loop.time() - started
        scheduler.release(task_id)

    await asyncio.gather(*(one(n) for n in (1, 2, 3)))
    assert moments == {1: 0.0, 2: 0.0, 3: pytest.approx(3600.0)}


async def test_a_429_pauses_the_whole_line() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(max_running=10, max_per_hour=100, clock=loop.time)
    scheduler.slow_down(30)
    started = loop.time()
    await scheduler.admit(1, 1)
    assert loop.time() - started == pytest.approx(30.0)


async def test_places_in_line_and_a_withdrawal() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(max_running=1, max_per_hour=100, clock=loop.time)
    await scheduler.admit(1, 1)  # running
    second = asyncio.create_task(scheduler.admit(2, 1))
    third = asyncio.create_task(scheduler.admit(3, 2))
    await asyncio.sleep(0.5)
    assert (scheduler.position(1), scheduler.position(2), scheduler.position(3)) == (None, 1, 2)
    assert scheduler.withdraw(3, 2)
    with pytest.raises(Withdrawn):
        await third
    assert not scheduler.withdraw(3, 2)  # once only
    scheduler.release(1)
    await second
    assert scheduler.position(2) is None
