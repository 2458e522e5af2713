"""Getting a task's outcome into its chat, through the chat port: the result (an album and
its buttons, or a video with its own), one delivery at a time per chat in the order results
became ready; or the failure notice, in place of the status message. What is delivered is
recorded as it goes, so a step redone after a crash sends only what is missing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.core.lifecycle import FailureKind, TaskKind
from bot.core.task import Task
from bot.engine.chat import ChatClosed, ChatPort, Offers, Refused
from bot.engine.job import Job, reload
from bot.engine.status import StatusMessages
from bot.ops.logs import task_logger
from bot.ops.metrics import Metrics
from storage.tasks import TaskRepository

_log = logging.getLogger(__name__)

# Records a failure (and its refund); True if this call did.
FailTask = Callable[[Task, FailureKind, "str | None"], Awaitable[bool]]


@dataclass
class _ChatTurn:
    """A chat's delivery lock, and how many tasks hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Results:
    def __init__(
        self,
        *,
        chat: ChatPort,
        tasks: TaskRepository,
        status: StatusMessages,
        followups: Callable[[str], tuple[bool, bool]],
        metrics: Metrics,
        fail: FailTask,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._chat = chat
        self._clock = clock
        self._tasks = tasks
        self._status = status
        self._followups = followups  # (animate, upscale) offered for a task of an account
        self._metrics = metrics
        self._fail = fail
        self._chat_turns: dict[int, _ChatTurn] = {}

    async def deliver(self, job: Job, task: Task) -> Task | None:
        """Send the result to its chat: the task as delivered, or None if this call did not
        finish it (it failed, or another process did)."""
        # One delivery at a time per chat, in the order results became ready (asyncio's
        # locks are fair): a chat's albums never overtake each other on the way out.
        self._status.withdraw(job)  # before waiting for the chat's earlier results
        turn = self._chat_turns.setdefault(task.chat_id, _ChatTurn())
        turn.users += 1
        try:
            async with turn.lock:
                return await self._deliver_now(job, task)
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._chat_turns[task.chat_id]

    async def _deliver_now(self, job: Job, task: Task) -> Task | None:
        task = await self._status.settled(job, task)
        if task.inline_message_id is not None:
            return await self._deliver_inline(job, task)
        animate, upscale = self._followups(task.account)
        offers = Offers(animate=animate, upscale=upscale)
        if task.buttons_message_id is None and not task.album_message_ids:
            if not task.result_urls:
                await self._fail(task, FailureKind.DELIVERY, None)
                return None
            try:
                posted = await self._chat.send_result(task, offers, job.sending)
            except ChatClosed as error:
                # The user blocked the bot (or it left the group): finish quietly, refund.
                _tlog(task).info("task %d: the chat is closed to the bot: %s", task.id, error)
                await self._fail(task, FailureKind.DELIVERY, None)
                return None
            except Refused as error:
                _tlog(task).warning("task %d: the chat refused the result: %s", task.id, error)
                await self._fail(task, FailureKind.DELIVERY, None)
                return None
            if posted.first_message_id is None:
                await self._fail(task, FailureKind.DELIVERY, None)
                return None
            noted = await self._tasks.note_album(task.id, posted.message_ids, posted.file_ids)
            if posted.buttons_message_id is not None:
                noted = await self._tasks.note_buttons(task.id, posted.buttons_message_id)
            task = noted or await reload(self._tasks, task)
        if task.buttons_message_id is None and task.kind is TaskKind.TEXT_TO_IMAGE:
            first = next(m for m in task.album_message_ids if m)
            buttons = await self._chat.send_buttons(task, first, offers, job.sending)
            await self._tasks.note_buttons(task.id, buttons)
        await self._status.remove(job, task)
        delivered = await self._tasks.mark_delivered(task.id, at=self._clock())
        if delivered is not None:
            self._metrics.tasks_finished.labels(task.kind, "delivered").inc()
            if task.finished_at is not None:
                waited = max(0.0, self._clock() - task.finished_at)
                self._metrics.delivery_seconds.labels(task.kind).observe(waited)
        _tlog(task).info("task %d: delivered %d items", task.id, len(task.result_urls))
        return delivered

    async def _deliver_inline(self, job: Job, task: Task) -> Task | None:
        """Into the inline message the user chose (in a chat the bot may not be in)."""
        if not task.result_urls:
            await self._fail(task, FailureKind.DELIVERY, None)
            return None
        try:
            await self._chat.send_inline_result(task, job.sending)
        except (ChatClosed, Refused) as error:
            _tlog(task).warning("task %d: inline message gone: %s", task.id, error)
            await self._fail(task, FailureKind.DELIVERY, None)
            return None
        delivered = await self._tasks.mark_delivered(task.id, at=self._clock())
        if delivered is not None:
            self._metrics.tasks_finished.labels(task.kind, "delivered").inc()
        _tlog(task).info("task %d: delivered into its inline message", task.id)
        return delivered

    async def report_failure(self, job: Job, task: Task) -> Task | None:
        """The failure notice, in place of the status message (or a new one); a chat that
        is closed or refuses it is not asked again."""
        self._status.withdraw(job)
        task = await self._status.settled(job, task)
        try:
            await self._chat.tell_failure(task, job.sending)
        except (ChatClosed, Refused) as error:
            _tlog(task).info("task %d: failure notice not shown: %s", task.id, error)
        return await self._tasks.mark_reported(task.id)


def _tlog(task: Task) -> logging.LoggerAdapter[logging.Logger]:
    return task_logger(_log, task.id, task.chat_id, task.account)
