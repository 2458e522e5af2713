"""Stopping never hangs on a cancellation that got lost.

Regression: a group test's bot sometimes took over 15 s to stop. A worker was cancelled
as its wait for a nudge ended; Python 3.11's `asyncio.wait_for` then returned instead of
raising, and the worker went on polling with nobody left to cancel it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import pytest

from bot.engine.engine import cancel_all, nudged_within


async def _cancelled_as_the_event_is_set(wait: object) -> bool:
    event = asyncio.Event()
    assert callable(wait)
    task = asyncio.create_task(wait(event, 10.0))
    await asyncio.sleep(0)  # waiting now
    event.set()
    task.cancel()  # in the same instant
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


async def test_a_cancellation_as_the_nudge_comes_is_kept() -> None:
    assert await _cancelled_as_the_event_is_set(nudged_within)


async def test_wait_for_in_this_python_is_what_loses_it() -> None:
    """The defect `nudged_within` avoids; if this starts failing, Python fixed it."""

    async def with_wait_for(event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    if sys.version_info >= (3, 12):
        pytest.skip("3.12's wait_for is asyncio.timeout underneath")
    assert not await _cancelled_as_the_event_is_set(with_wait_for)


async def test_a_nudge_and_a_timeout_are_told_apart() -> None:
    event = asyncio.Event()
    assert not await nudged_within(event, 0.001)
    event.set()
    assert await nudged_within(event, 10.0)


async def test_cancel_all_ends_a_task_that_swallows_one_cancellation() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # as a library with the defect above does
        await asyncio.Event().wait()  # and goes on as if nothing happened

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_all([task], every=0.01), 5.0)
    assert swallowed.is_set()
    assert task.cancelled()
