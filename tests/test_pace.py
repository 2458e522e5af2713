"""The priority pace behind flood control: a leaky bucket whose queue is ordered.

These run on looptime's virtual clock: the event loop's time moves only when every task is
waiting for it, so the moments below are exact, however busy the machine is.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.telegram.pace import BEST_EFFORT, INTERACTIVE, URGENT, LeakyBucket, PriorityPace

pytestmark = pytest.mark.looptime


async def _moments(pace: PriorityPace, calls: list[tuple[str, int]]) -> dict[str, float]:
    """Start `calls` (name, priority) in order at one instant; when each was let through."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    moments: dict[str, float] = {}

    async def call(name: str, priority: int) -> None:
        await pace.acquire(priority)
        moments[name] = round(loop.time() - started, 6)

    await asyncio.gather(*(call(name, priority) for name, priority in calls))
    return moments


def test_a_bucket_lets_its_capacity_through_then_drains_at_its_rate() -> None:
    bucket = LeakyBucket(3, 3.0)  # three at once, then one a second
    for _ in range(3):
        assert bucket.room_in(10.0) == 0
        bucket.take(10.0)
    assert bucket.room_in(10.0) == pytest.approx(1.0)
    assert bucket.room_in(10.5) == pytest.approx(0.5)
    assert bucket.room_in(11.0) == 0
    assert bucket.room_in(11.0, keep=1) == pytest.approx(1.0)  # one place left free
    assert bucket.room_in(100.0, keep=1) == 0


async def test_calls_within_capacity_go_at_once_then_at_the_pace() -> None:
    pace = PriorityPace(2, 0.2)  # two at once, then one every 0.1 s
    moments = await _moments(pace, [(f"call {i}", URGENT) for i in range(5)])
    assert list(moments.values()) == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3])


async def test_waiting_calls_leave_by_priority_then_in_order_of_arrival() -> None:
    pace = PriorityPace(1, 1.0)
    await pace.acquire()  # the bucket is full: everyone after this waits
    moments = await _moments(
        pace,
        [
            ("status 0", BEST_EFFORT),
            ("status 1", BEST_EFFORT),
            ("album 0", URGENT),
            ("album 1", URGENT),
            ("answer", INTERACTIVE),
        ],
    )
    assert sorted(moments, key=moments.__getitem__) == [
        "answer",
        "album 0",
        "album 1",
        "status 0",
        "status 1",
    ]
    assert moments["answer"] == pytest.approx(1.0)
    assert moments["status 1"] == pytest.approx(5.0)


async def test_best_effort_calls_leave_the_last_place_for_a_result() -> None:
    pace = PriorityPace(3, 3.0)  # a private chat: three at once, then one a second
    moments = await _moments(pace, [("status 0", BEST_EFFORT), ("status 1", BEST_EFFORT)])
    assert moments == {"status 0": 0.0, "status 1": 0.0}
    # The next status edit must wait, though the bucket has a place: that place is kept...
    loop = asyncio.get_running_loop()
    edit = asyncio.create_task(pace.acquire(BEST_EFFORT))
    await asyncio.sleep(0.1)
    assert not edit.done()
    # ...for the album that is ready now, and leaves at once.
    before = loop.time()
    await pace.acquire(URGENT)
    assert loop.time() == before
    await edit


async def test_a_bucket_of_one_has_no_place_to_keep() -> None:
    pace = PriorityPace(1, 1.0)
    moments = await _moments(pace, [("status", BEST_EFFORT)])
    assert moments == {"status": 0.0}


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    pace = PriorityPace(1, 1.0)
    await pace.acquire()
    loop = asyncio.get_running_loop()
    started = loop.time()
    withdrawn = asyncio.create_task(pace.acquire(URGENT))
    waiting = asyncio.create_task(pace.acquire(BEST_EFFORT))
    await asyncio.sleep(0.5)
    assert pace.waiting == 2
    withdrawn.cancel()
    await waiting
    assert loop.time() - started == pytest.approx(1.0)  # the withdrawn call's turn
    assert pace.waiting == 0
