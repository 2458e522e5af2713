"""A task's status message, told through the chat port (`chat.py`): posted when the task is
taken, showing its place in line and then how long it has been working; at the end removed,
or turned into the failure notice.

Best effort throughout: results go first, a tick is skipped when the chat is backed up (the
next shows the latest), and a status message still waiting to leave when its result is
ready is never sent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.core.lifecycle import StatusCadence, TaskState
from bot.core.task import Task
from bot.engine.chat import (
    Activity,
    ChatError,
    ChatPort,
    ClaimLost,
    InLine,
    Outage,
    Refused,
    StatusView,
    Working,
)
from bot.engine.job import Job, reload
from bot.engine.scheduler import Scheduler
from bot.ops.logs import task_logger
from bot.providers import UpstreamState
from storage.tasks import TaskRepository

_log = logging.getLogger(__name__)

# A task shows a status message while the user is waiting for the upstream.
_STATUS_SHOWN_IN = frozenset({TaskState.PENDING, TaskState.RUNNING})

Unstoppable = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]
# Seconds a task at this place in the line waits for its turn; None if not known.
WaitAt = Callable[[Task, int], Awaitable["float | None"]]


class StatusMessages:
    def __init__(
        self,
        *,
        chat: ChatPort,
        tasks: TaskRepository,
        cadence: StatusCadence,
        scheduler: Scheduler,
        unstoppable: Unstoppable,
        wait_at: WaitAt | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._chat = chat
        self._clock = clock
        self._tasks = tasks
        self._cadence = cadence
        self._scheduler = scheduler
        self._unstoppable = unstoppable
        self._wait_at = wait_at

    def _working(self, job: Job, task: Task) -> Working:
        """What a task upstream shows: what the upstream said last, and the time since it
        was asked for."""
        seen = job.seen if job.seen is UpstreamState.WORKING else None  # queued reads as unknown
        return Working(seen, max(0, int(self._clock() - task.created_at)))

    def start(self, job: Job, task: Task) -> None:
        """Post the status message beside the task's work (a send that, once begun, is
        finished and recorded even if the worker stops)."""
        job.status_post = self._unstoppable(self._post(job, task))

    async def _post(self, job: Job, task: Task) -> None:
        if task.status_message_id is not None or task.state not in _STATUS_SHOWN_IN:
            return
        if task.inline_message_id is not None:
            return  # the inline message itself says the picture is being made
        # An acknowledgement: welcome, but results go first.
        sending = job.status_sending = job.sending.later()
        view = self._working(job, task)
        try:
            message_id = await self._chat.post_status(task, view, sending)
            await self._tasks.note_status_message(task.id, message_id)
        except ChatError as error:
            _tlog(task).warning("task %d: could not post the status message: %s", task.id, error)
            return
        except ClaimLost:
            return  # another process drives the task now
        job.status_shown = view

    def show_place(self, job: Job) -> float | None:
        """A task waiting in line (`job.waiting`): if its place changed since the message
        last showed it and its interval has passed, edit the message (beside, not waited
        for). At most one edit per interval, and only once the line has moved. Returns in
        how many seconds to look again if the line does not move first; None: only when it
        does."""
        task = job.waiting
        if task is None or task.inline_message_id is not None:
            return None
        if job.place_edit is not None and not job.place_edit.done():
            return None  # an edit is on its way: looked at again once the line moves
        place = self._scheduler.position(task.id)
        stranded = self._scheduler.stranded_until(task.id)
        if place is None or (place, stranded is not None) == job.place_shown:
            return None
        now = asyncio.get_running_loop().time()
        if now < job.place_due:
            return job.place_due - now
        # A place is news worth far fewer edits than a running task's clock.
        interval = 3 * self._cadence.interval(is_group=task.is_group)
        job.place_due = now + interval
        if self._chat.busy(task.chat_id):
            return interval  # the chat is backed up: try again later
        job.place_shown = (place, stranded is not None)
        job.place_edit = asyncio.create_task(self._edit_place(job, task, place, stranded))
        return None

    async def _edit_place(
        self, job: Job, task: Task, place: int, stranded_until: float | None
    ) -> None:
        with contextlib.suppress(ClaimLost):  # another process drives the task now
            await self._show_place(job, task, place, stranded_until)

    async def _show_place(
        self, job: Job, task: Task, place: int, stranded_until: float | None
    ) -> None:
        current = await self.settled(job, task)
        wanted: StatusView
        if stranded_until is None:
            wait = await self._wait(task, place)
            wanted = InLine(place, None if wait is None else max(1, math.ceil(wait / 60)))
        else:
            # Every account that could do it is out: it waits for one, for a while.
            left = stranded_until - self._scheduler.pool.now()
            wanted = Outage(max(1, math.ceil(left / 60)))
        if current.status_message_id is None or wanted == job.status_shown:
            return
        try:
            await self._chat.edit_status(
                task, current.status_message_id, wanted, job.sending.later()
            )
            job.status_shown = wanted
        except ChatError as error:
            _tlog(task).info("task %d: place in line not shown: %s", task.id, error)

    async def _wait(self, task: Task, place: int) -> float | None:
        if self._wait_at is None:
            return None
        try:
            return await self._wait_at(task, place)
        except Exception:
            _tlog(task).warning("task %d: expected wait not known", task.id, exc_info=True)
            return None

    async def tick(self, job: Job, task: Task) -> None:
        """While the task runs upstream: "sending photo…" and the seconds it has worked."""
        if task.inline_message_id is not None:
            return  # no chat to show it in
        with contextlib.suppress(ClaimLost):  # another process drives the task now
            await self._tick(job, task)

    async def _tick(self, job: Job, task: Task) -> None:
        interval = self._cadence.interval(is_group=task.is_group)
        while True:
            if not self._chat.busy(task.chat_id):
                await self.show_activity(job, task, Activity.MAKING_PHOTO)
            # Up to half again, never less (groups must keep to their pace): tasks started
            # together would otherwise all tick in the same instant, and a burst of hundreds
            # of edits delays the results queued behind it.
            await asyncio.sleep(interval * random.uniform(1.0, 1.5))
            if self._chat.busy(task.chat_id):
                continue  # results first: this tick's edit is dropped, the next shows the latest
            current = await self._tasks.get(task.id)
            if current is None or current.status_message_id is None:
                continue
            wanted = self._working(job, task)
            if wanted == job.status_shown:  # what the message says now
                continue
            try:
                await self._chat.edit_status(
                    task, current.status_message_id, wanted, job.sending.later()
                )
                job.status_shown = wanted
            except Refused as error:
                _tlog(task).info("task %d: status edit refused: %s", task.id, error)
                return
            except ChatError as error:
                _tlog(task).info("task %d: status edit failed: %s", task.id, error)

    async def show_activity(self, job: Job, task: Task, activity: Activity) -> None:
        try:
            await self._chat.show_activity(task, activity, job.sending.later())
        except ChatError as error:
            _tlog(task).info("task %d: chat action failed: %s", task.id, error)

    async def settled(self, job: Job, task: Task) -> Task:
        """Wait for the status message to be posted (or to fail); the task as it is now."""
        if job.status_post is not None:
            await asyncio.wait([job.status_post])
        return await reload(self._tasks, task)

    def withdraw(self, job: Job) -> None:
        """When Telegram is backed up, the outcome may be known before the status message
        has left: then it never goes, saving the chat two messages (it and its removal)."""
        post, sending = job.status_post, job.status_sending
        if post is not None and not post.done() and sending is not None and not sending.gone:
            post.cancel()

    async def remove(self, job: Job, task: Task) -> None:
        """Delete the status message; `task` as read after it settled (`settled`)."""
        if task.status_message_id is None:
            return
        try:
            await self._chat.remove_status(task, task.status_message_id, job.sending)
        except ChatError as error:
            _tlog(task).info("task %d: could not delete the status message: %s", task.id, error)


def _tlog(task: Task) -> logging.LoggerAdapter[logging.Logger]:
    return task_logger(_log, task.id, task.chat_id, task.account)
