"""Getting a task's outcome into its chat: the result (an album and its buttons, or a video
with its own), one delivery at a time per chat in the order results became ready; or the
failure notice, in place of the status message."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import InputMediaPhoto
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden

from bot.core.catalog import Lang, Markup, text
from bot.core.lifecycle import FailureKind, TaskKind
from bot.engine.job import Job, placement, reload
from bot.engine.port import TelegramPort
from bot.engine.status import StatusMessages
from bot.ops.logs import task_logger
from bot.ops.metrics import Metrics
from bot.telegram import rendering
from bot.telegram.delivery import Deliverer, MediaKind, media_kind
from bot.telegram.media import Probe
from storage.tasks import Task, TaskRepository

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
        bot: TelegramPort,
        tasks: TaskRepository,
        deliverer: Deliverer,
        status: StatusMessages,
        followups: Callable[[str], tuple[bool, bool]],
        metrics: Metrics,
        fail: FailTask,
    ) -> None:
        self._bot = bot
        self._tasks = tasks
        self._deliverer = deliverer
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
            return await self._deliver_inline(task, task.inline_message_id)
        if task.buttons_message_id is None and not task.album_message_ids:
            if not task.result_urls:
                await self._fail(task, FailureKind.DELIVERY, None)
                return None
            lang = Lang(task.lang)
            caption = rendering.album_caption(task.prompt)
            # An image set goes by URL as it is. Anything else may be a video, whose size
            # decides how it goes: one request to its file server says both.
            video: Probe | None = None
            if task.kind is not TaskKind.TEXT_TO_IMAGE:
                [result] = await self._deliverer.probe(task.result_urls[:1])
                video = result if media_kind(result) is MediaKind.VIDEO else None
            try:
                if video is not None:
                    await self._status.chat_action(task, ChatAction.UPLOAD_VIDEO)
                    _, upscale = self._followups(task.account)
                    markup = rendering.video_keyboard(
                        lang, task.id, task.kind, upscale_offered=upscale
                    )
                    sent = await self._deliverer.send_video(
                        placement(task), video, caption, markup, lang
                    )
                else:
                    sent = await self._deliverer.send_images(
                        placement(task), task.result_urls, caption, lang
                    )
            except Forbidden as error:
                # The user blocked the bot (or it left the group): finish quietly, refund.
                _tlog(task).info("task %d: the chat is closed to the bot: %s", task.id, error)
                await self._fail(task, FailureKind.DELIVERY, None)
                return None
            except BadRequest as error:
                _tlog(task).warning("task %d: Telegram refused the result: %s", task.id, error)
                await self._fail(task, FailureKind.DELIVERY, None)
                return None
            if sent.first_message_id is None:
                await self._fail(task, FailureKind.DELIVERY, None)
                return None
            noted = await self._tasks.note_album(task.id, sent.message_ids, sent.file_ids)
            if video is not None:
                # A single video carries its buttons itself.
                noted = await self._tasks.note_buttons(task.id, sent.first_message_id)
            task = noted or await reload(self._tasks, task)
        if task.buttons_message_id is None and task.kind is TaskKind.TEXT_TO_IMAGE:
            lang = Lang(task.lang)
            first = next(m for m in task.album_message_ids if m)
            where = placement(task, reply_to=first)
            animate, _ = self._followups(task.account)
            buttons = await self._deliverer.send_buttons(
                where,
                task.id,
                len(task.result_urls),
                task.aspect_ratio,
                lang,
                animate_offered=animate,
            )
            await self._tasks.note_buttons(task.id, buttons.message_id)
        await self._status.remove(task)
        delivered = await self._tasks.mark_delivered(task.id, at=time.time())
        if delivered is not None:
            self._metrics.tasks_finished.labels(task.kind, "delivered").inc()
            if task.finished_at is not None:
                waited = max(0.0, time.time() - task.finished_at)
                self._metrics.delivery_seconds.labels(task.kind).observe(waited)
        _tlog(task).info("task %d: delivered %d items", task.id, len(task.result_urls))
        return delivered

    async def _deliver_inline(self, task: Task, inline_message_id: str) -> Task | None:
        """Into the inline message the user chose (in a chat the bot may not be in): the
        first image, by URL (an inline message takes no upload), under a button that opens
        the bot with all of them. Telegram refusing the image leaves a link to it instead."""
        if not task.result_urls:
            await self._fail(task, FailureKind.DELIVERY, None)
            return None
        lang = Lang(task.lang)
        keyboard = rendering.open_in_bot_keyboard(lang, self._bot.username, task.id)
        caption = rendering.album_caption(task.prompt)
        try:
            await self._bot.edit_message_media(
                InputMediaPhoto(task.result_urls[0], caption=caption, parse_mode=ParseMode.HTML),
                inline_message_id=inline_message_id,
                reply_markup=keyboard,
            )
        except BadRequest as error:
            if "not modified" not in error.message.lower():  # not: done before a restart
                _tlog(task).info("task %d: inline image refused: %s", task.id, error)
                try:
                    await self._bot.edit_message_text(
                        text(lang, "inline.ready_as_link", url=task.result_urls[0]),
                        inline_message_id=inline_message_id,
                        reply_markup=keyboard,
                    )
                except BadRequest as refused:
                    _tlog(task).warning("task %d: inline message gone: %s", task.id, refused)
                    await self._fail(task, FailureKind.DELIVERY, None)
                    return None
        delivered = await self._tasks.mark_delivered(task.id, at=time.time())
        if delivered is not None:
            self._metrics.tasks_finished.labels(task.kind, "delivered").inc()
        _tlog(task).info("task %d: delivered into its inline message", task.id)
        return delivered

    async def report_failure(self, job: Job, task: Task) -> Task | None:
        self._status.withdraw(job)
        task = await self._status.settled(job, task)
        message = failure_text(task)
        if task.inline_message_id is not None:
            try:
                await self._bot.edit_message_text(message, inline_message_id=task.inline_message_id)
            except BadRequest as error:  # gone; a passing error is retried with the step
                _tlog(task).info("task %d: inline message not edited: %s", task.id, error)
            return await self._tasks.mark_reported(task.id)
        sent = False
        if task.status_message_id is not None:
            # The status message becomes the failure notice: one message, nothing stale.
            try:
                await self._bot.edit_message_text(message, task.chat_id, task.status_message_id)
                sent = True
            except BadRequest as error:
                _tlog(task).info(
                    "task %d: could not edit the status into the failure: %s", task.id, error
                )
        if not sent:
            where = placement(task)
            try:
                await self._bot.send_message(
                    task.chat_id,
                    message,
                    message_thread_id=where.message_thread_id,
                    reply_parameters=where.reply_parameters,
                )
            except Forbidden as error:
                _tlog(task).info("task %d: the chat is closed to the bot: %s", task.id, error)
        return await self._tasks.mark_reported(task.id)


def failure_text(task: Task) -> str:
    lang = Lang(task.lang)
    reason = _failure_reason(task, lang)
    if task.cost:
        return f"{reason}\n{text(lang, 'failure.refunded', cost=task.cost)}"
    return reason


def _failure_reason(task: Task, lang: Lang) -> str:
    """One sentence naming what failed (the images, the video, the animation, the upscale)."""
    what = Markup(text(lang, f"failure.what.{task.kind}"))
    match task.failure_kind:
        case FailureKind.GENERATION if task.failure_detail:
            return text(lang, "failure.generation", what=what, reason=task.failure_detail)
        case FailureKind.GENERATION:
            return text(lang, "failure.generation_no_reason", what=what)
        case FailureKind.REJECTED if task.failure_detail:
            return text(lang, "failure.rejected", what=what, reason=task.failure_detail)
        case FailureKind.TIMEOUT:
            return text(lang, "failure.timeout", what=what)
        case FailureKind.DELIVERY:
            return text(lang, "failure.delivery", what=what)
        case FailureKind.INTERRUPTED:
            return text(lang, "failure.interrupted", what=what)
        case FailureKind.CANCELLED:
            return text(lang, "failure.cancelled")
        case _:
            return text(lang, "failure.unavailable", what=what)


def _tlog(task: Task) -> logging.LoggerAdapter[logging.Logger]:
    return task_logger(_log, task.id, task.chat_id, task.account)
