"""The engine's chat port on Telegram: what a task's chat is shown, and how it is sent.

The engine (`bot/engine/chat.py`) says what happened to a task; this module renders it from
the catalogs and sends it through PTB's bot, in the task's chat and forum topic, answering
its request. Telegram's errors come back as the engine's (`ChatClosed`, `ChatMoved`,
`Refused`, `Unreachable`, `ClaimLost`), and every call goes through flood control as one
about that task (`flood.about_a_task`): urgent or not, sent only under its claim.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from bot.core.lifecycle import FailureKind, TaskKind
from bot.core.task import Task
from bot.engine.chat import (
    Activity,
    ChatClosed,
    ChatMoved,
    ClaimLost,
    InLine,
    Offers,
    Outage,
    Posted,
    Refused,
    Sending,
    StatusView,
    Unreachable,
    Working,
)
from bot.providers.base import UpstreamState
from bot.telegram import flood
from bot.telegram.catalog import Lang, Markup, text
from bot.telegram.delivery import Deliverer, MediaKind, Placement, media_kind
from bot.telegram.replies import duration_text
from bot.telegram.results import album_caption, video_keyboard

_ACTIONS = {
    Activity.MAKING_PHOTO: ChatAction.UPLOAD_PHOTO,
    Activity.MAKING_VIDEO: ChatAction.UPLOAD_VIDEO,
}


class TelegramChat:
    def __init__(self, bot: Bot, deliverer: Deliverer, flood_control: flood.FloodControl) -> None:
        self._bot = bot
        self._deliverer = deliverer
        self._flood = flood_control

    def busy(self, chat_id: int) -> bool:
        return self._flood.busy_for(chat_id)

    # --- the status message -------------------------------------------------------------

    async def post_status(self, task: Task, view: StatusView, sending: Sending) -> int:
        where = placement(task)
        async with _sent(sending):
            message = await self._bot.send_message(
                task.chat_id,
                status_text(Lang(task.lang), view),
                message_thread_id=where.message_thread_id,
                reply_parameters=where.reply_parameters,
            )
        return message.message_id

    async def edit_status(
        self, task: Task, message_id: int, view: StatusView, sending: Sending
    ) -> None:
        try:
            async with _sent(sending):
                await self._bot.edit_message_text(
                    status_text(Lang(task.lang), view), task.chat_id, message_id
                )
        except Refused as refused:
            if "not modified" not in str(refused).lower():
                raise

    async def remove_status(self, task: Task, message_id: int, sending: Sending) -> None:
        async with _sent(sending):
            await self._bot.delete_message(task.chat_id, message_id)

    async def show_activity(self, task: Task, activity: Activity, sending: Sending) -> None:
        async with _sent(sending):
            await self._bot.send_chat_action(
                task.chat_id, _ACTIONS[activity], message_thread_id=task.message_thread_id
            )

    # --- the outcome ------------------------------------------------------------------------

    async def send_result(self, task: Task, offers: Offers, sending: Sending) -> Posted:
        """An image set goes by URL as it is. Anything else may be a video, whose size
        decides how it goes: one request to its file server says both."""
        lang = Lang(task.lang)
        caption = album_caption(task.prompt)
        where = placement(task)
        async with _sent(sending):
            if task.kind is not TaskKind.TEXT_TO_IMAGE:
                [probe] = await self._deliverer.probe(task.result_urls[:1])
                if media_kind(probe) is MediaKind.VIDEO:
                    await self._action(task, ChatAction.UPLOAD_VIDEO)
                    markup = video_keyboard(
                        lang, task.id, task.kind, upscale_offered=offers.upscale
                    )
                    video = await self._deliverer.send_video(where, probe, caption, markup, lang)
                    # A single video carries its buttons itself.
                    return Posted(
                        video.message_ids, video.file_ids, buttons_message_id=video.first_message_id
                    )
            images = await self._deliverer.send_images(where, task.result_urls, caption, lang)
        return Posted(images.message_ids, images.file_ids)

    async def send_buttons(
        self, task: Task, reply_to: int, offers: Offers, sending: Sending
    ) -> int:
        async with _sent(sending):
            message = await self._deliverer.send_buttons(
                placement(task, reply_to=reply_to),
                task.id,
                len(task.result_urls),
                task.aspect_ratio,
                Lang(task.lang),
                animate_offered=offers.animate,
            )
        return message.message_id

    async def send_inline_result(self, task: Task, sending: Sending) -> None:
        """Into the inline message the user chose (in a chat the bot may not be in): the
        first image, by URL (an inline message takes no upload), under a button that opens
        the bot with all of them. Telegram refusing the image leaves a link to it instead."""
        assert task.inline_message_id is not None
        lang = Lang(task.lang)
        keyboard = open_in_bot_keyboard(lang, self._bot.username, task.id)
        caption = album_caption(task.prompt)
        try:
            async with _sent(sending):
                await self._bot.edit_message_media(
                    InputMediaPhoto(
                        task.result_urls[0], caption=caption, parse_mode=ParseMode.HTML
                    ),
                    inline_message_id=task.inline_message_id,
                    reply_markup=keyboard,
                )
        except Refused as refused:
            if "not modified" in str(refused).lower():
                return  # done before a restart
            async with _sent(sending):
                await self._bot.edit_message_text(
                    text(lang, "inline.ready_as_link", url=task.result_urls[0]),
                    inline_message_id=task.inline_message_id,
                    reply_markup=keyboard,
                )

    async def tell_failure(self, task: Task, sending: Sending) -> None:
        message = failure_text(task)
        if task.inline_message_id is not None:
            async with _sent(sending):
                await self._bot.edit_message_text(message, inline_message_id=task.inline_message_id)
            return
        if task.status_message_id is not None:
            # The status message becomes the failure notice: one message, nothing stale.
            try:
                async with _sent(sending):
                    await self._bot.edit_message_text(message, task.chat_id, task.status_message_id)
                return
            except Refused:
                pass  # gone: a new message says it
        where = placement(task)
        async with _sent(sending):
            await self._bot.send_message(
                task.chat_id,
                message,
                message_thread_id=where.message_thread_id,
                reply_parameters=where.reply_parameters,
            )

    async def _action(self, task: Task, action: ChatAction) -> None:
        with contextlib.suppress(TelegramError):  # a header's hint, no more
            await self._bot.send_chat_action(
                task.chat_id, action, message_thread_id=task.message_thread_id
            )


@asynccontextmanager
async def _sent(sending: Sending) -> AsyncIterator[None]:
    """The calls inside, as calls about one task (flood control's priority and fence), with
    Telegram's errors told as the engine's."""
    try:
        with flood.about_a_task(urgent=sending.urgent, still_mine=sending.holds, ticket=sending):
            yield
    except flood.Fenced as fenced:
        raise ClaimLost(str(fenced)) from fenced
    except ChatMigrated as moved:
        raise ChatMoved(moved.new_chat_id) from moved
    except Forbidden as closed:
        raise ChatClosed(closed.message) from closed
    except BadRequest as refused:
        raise Refused(refused.message) from refused
    except TelegramError as error:
        raise Unreachable(str(error)) from error


def placement(task: Task, *, reply_to: int | None = None) -> Placement:
    """Where the task's messages go: its chat and topic, answering its request."""
    return Placement(
        chat_id=task.chat_id,
        message_thread_id=task.message_thread_id,
        reply_to=reply_to if reply_to is not None else task.request_message_id,
    )


def status_text(lang: Lang, view: StatusView) -> str:
    match view:
        case InLine(place, None):
            return text(lang, "status.in_line", place=place)
        case InLine(place, minutes):
            wait = duration_text(lang, (minutes or 1) * 60)
            return text(lang, "status.in_line_wait", place=place, wait=wait)
        case Outage(minutes):
            return text(lang, "status.outage", minutes=minutes)
        case Working(seen, seconds):
            return working_text(lang, seen, seconds)


def failure_text(task: Task) -> str:
    lang = Lang(task.lang)
    reason = _failure_reason(task, lang)
    if task.cost:
        return f"{reason}\n{text(lang, 'failure.refunded', cost=task.cost)}"
    return reason


# What each kind of task makes, as a failure names it ("Could not make the video").
_WHAT = {
    TaskKind.TEXT_TO_IMAGE: "failure.what.text_to_image",
    TaskKind.TEXT_TO_VIDEO: "failure.what.text_to_video",
    TaskKind.IMAGE_TO_VIDEO: "failure.what.image_to_video",
    TaskKind.UPSCALE: "failure.what.upscale",
}


def _failure_reason(task: Task, lang: Lang) -> str:
    """One sentence naming what failed (the images, the video, the animation, the upscale)."""
    what = Markup(text(lang, _WHAT[task.kind]))
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


def working_text(lang: Lang, state: UpstreamState | None, elapsed: float) -> str:
    """A task upstream: queued there or being made, and for how long."""
    seconds = max(0, int(elapsed))
    if state is UpstreamState.WORKING:
        return text(lang, "status.working", elapsed=seconds)
    return text(lang, "status.queued", elapsed=seconds)


def open_in_bot_keyboard(lang: Lang, bot_username: str, task_id: int) -> InlineKeyboardMarkup:
    """Under an inline result: the bot in a private chat, with the whole set and its buttons."""
    url = f"https://t.me/{bot_username}?start=t{task_id}"
    return InlineKeyboardMarkup([[InlineKeyboardButton(text(lang, "inline.open"), url=url)]])
