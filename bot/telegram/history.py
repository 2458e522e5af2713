"""/history: a member's results in this chat, newest first, a page at a time; one chosen is
sent again from Telegram's file ids (no upstream call, no charge), with its buttons, which
work as on the day it was made: they name the task, not the message."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot.core import callback_data
from bot.core.callback_data import HistoryPage, Resend
from bot.core.lifecycle import TaskKind
from bot.core.task import Task
from bot.providers import Capabilities
from bot.telegram import catalog
from bot.telegram.catalog import Lang, plain, text
from bot.telegram.delivery import Deliverer, Placement, is_video_url
from bot.telegram.replies import Handlers, command, lang_of, shorten
from bot.telegram.results import album_caption, video_keyboard
from storage.tasks import TaskRepository

_log = logging.getLogger(__name__)

PAGE_SIZE = 5


PROMPT_CHARS = 40


class History:
    def __init__(
        self, *, tasks: TaskRepository, deliverer: Deliverer, capabilities: Capabilities
    ) -> None:
        self._tasks = tasks
        self._deliverer = deliverer
        self._can = capabilities

    def handlers(self) -> Handlers:
        return [
            command("history", self.command),
            CallbackQueryHandler(self.press, pattern=callback_data.of(HistoryPage, Resend)),
        ]

    async def command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        text, keyboard = await self._page(update, message.chat.id, user.id, 0)
        await message.reply_text(text, reply_markup=keyboard)

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        lang = lang_of(update)
        action = callback_data.decode(query.data)
        message = query.message
        if not isinstance(message, Message):
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        if isinstance(action, HistoryPage):
            if action.user_id != query.from_user.id:
                await query.answer(catalog.text(lang, "history.not_yours"), show_alert=True)
                return
            await query.answer()
            text, keyboard = await self._page(update, message.chat.id, action.user_id, action.page)
            await message.edit_text(text, reply_markup=keyboard)
            return
        task = await self._tasks.get(action.task_id) if isinstance(action, Resend) else None
        if task is None or task.chat_id != message.chat.id or not any(task.media_file_ids):
            await query.answer(catalog.text(lang, "history.gone"), show_alert=True)
            return
        if task.user_id != query.from_user.id:
            await query.answer(catalog.text(lang, "history.not_yours"), show_alert=True)
            return
        await query.answer()
        thread = message.message_thread_id if message.is_topic_message else None
        try:
            await self.resend(context.bot, task, Placement(message.chat.id, thread, None))
        except TelegramError as error:
            _log.warning("task %d: not sent again: %s", task.id, error)

    async def _page(
        self, update: Update, chat_id: int, user_id: int, page: int
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        tasks, total = await self._tasks.delivered_of(
            chat_id, user_id, offset=page * PAGE_SIZE, limit=PAGE_SIZE
        )
        if not tasks and page > 0:  # the list shrank (a chat moved, say): back to the start
            page = 0
            tasks, total = await self._tasks.delivered_of(
                chat_id, user_id, offset=0, limit=PAGE_SIZE
            )
        return history_page(lang_of(update), user_id, page, tasks, total)

    async def resend(self, bot: Bot, task: Task, where: Placement) -> None:
        """The task's result again, from Telegram's file ids, with its buttons."""
        lang = catalog.Lang(task.lang)
        caption = album_caption(task.prompt)
        if task.result_urls and is_video_url(task.result_urls[0]):
            [file_id, *_] = task.media_file_ids
            keyboard = video_keyboard(lang, task.id, task.kind, upscale_offered=self._can.upscale)
            await bot.send_video(
                where.chat_id,
                file_id,
                caption=caption,
                reply_markup=keyboard,
                message_thread_id=where.message_thread_id,
            )
            return
        photos = [(n, file_id) for n, file_id in enumerate(task.media_file_ids) if file_id]
        sent = await self._deliverer.send_album(where, list(photos), caption)
        if task.kind is not TaskKind.TEXT_TO_IMAGE:
            return  # an upscaled image goes without buttons, as it did the first time
        await self._deliverer.send_buttons(
            Placement(where.chat_id, where.message_thread_id, sent[0].message_id),
            task.id,
            len(task.result_urls),
            task.aspect_ratio,
            lang,
            animate_offered=self._can.image_to_video,
        )


def history_page(
    lang: Lang, user_id: int, page: int, tasks: Sequence[Task], total: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """/history: a page of the member's results here, a button each, and ◀ ▶ between pages."""
    if total == 0:
        return text(lang, "history.empty"), None
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    rows = [
        [
            InlineKeyboardButton(
                plain(
                    lang,
                    "history.item_images"
                    if t.kind is TaskKind.TEXT_TO_IMAGE
                    else "history.item_video",
                    prompt=shorten(t.prompt or "…", PROMPT_CHARS),
                    day=datetime.fromtimestamp(t.created_at, UTC).strftime("%d.%m"),
                ),
                callback_data=callback_data.encode(Resend(t.id)),
            )
        ]
        for t in tasks
    ]
    turns = []
    if page > 0:
        turns.append(
            InlineKeyboardButton(
                text(lang, "history.previous"),
                callback_data=callback_data.encode(HistoryPage(user_id, page - 1)),
            )
        )
    if page + 1 < pages:
        turns.append(
            InlineKeyboardButton(
                text(lang, "history.next"),
                callback_data=callback_data.encode(HistoryPage(user_id, page + 1)),
            )
        )
    if turns:
        rows.append(turns)
    title = text(lang, "history.title", page=page + 1, pages=pages)
    return title, InlineKeyboardMarkup(rows)
