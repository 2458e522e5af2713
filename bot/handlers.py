"""Telegram update handlers: validate, record, hand over to the engine, return.

Nothing here waits for a generation.
"""

from __future__ import annotations

import logging

from telegram import Message, MessageEntity, Update
from telegram.constants import ParseMode
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot import callback_data, catalog
from bot.callback_data import Animate, Reroll
from bot.catalog import Lang, language_for
from bot.engine import Engine
from bot.lifecycle import TaskKind
from bot.parsing import ParseError, parse_imagine
from storage.tasks import NewTask, TaskRepository

_log = logging.getLogger(__name__)

# New messages only: an edited `/imagine` must not start (and bill) a second task.
_NEW_MESSAGES = filters.UpdateType.MESSAGE


class Handlers:
    def __init__(self, *, engine: Engine, tasks: TaskRepository, provider_name: str) -> None:
        self._engine = engine
        self._tasks = tasks
        self._provider_name = provider_name

    def register(self, application: Application) -> None:  # type: ignore[type-arg]
        application.add_handler(CommandHandler(["start", "help"], self.help, filters=_NEW_MESSAGES))
        application.add_handler(CommandHandler("imagine", self.imagine, filters=_NEW_MESSAGES))
        application.add_handler(CallbackQueryHandler(self.button))
        application.add_error_handler(self.error)

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        await message.reply_text(catalog.text(_lang(update), "help"), parse_mode=ParseMode.HTML)

    async def imagine(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        lang = _lang(update)
        parsed = parse_imagine(_text_after_command(message))
        if isinstance(parsed, ParseError):
            await _refuse(message, lang, parsed)
            return
        await self._engine.submit(
            NewTask(
                kind=TaskKind.TEXT_TO_IMAGE,
                provider=self._provider_name,
                chat_id=message.chat_id,
                chat_type=message.chat.type,
                user_id=user.id,
                lang=lang,
                prompt=parsed.prompt,
                aspect_ratio=parsed.aspect_ratio,
                message_thread_id=message.message_thread_id if message.is_topic_message else None,
                request_message_id=message.message_id,
            )
        )

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        lang = _lang(update)
        action = callback_data.decode(query.data)
        message = query.message
        task = await self._tasks.get(action.task_id) if action else None
        # A button only acts on a task of the chat it is shown in.
        if action is None or task is None or message is None or task.chat_id != message.chat.id:
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        match action:
            case Animate():
                await query.answer(catalog.text(lang, "button.animate_soon"))
            case Reroll():
                await self._engine.submit(
                    NewTask(
                        kind=task.kind,
                        provider=self._provider_name,
                        chat_id=task.chat_id,
                        chat_type=task.chat_type,
                        user_id=query.from_user.id,
                        lang=lang,
                        prompt=task.prompt,
                        aspect_ratio=task.aspect_ratio,
                        message_thread_id=task.message_thread_id,
                        request_message_id=message.message_id,
                        parent_task_id=task.id,
                    )
                )
                await query.answer(catalog.text(lang, "button.reroll_started"))

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        _log.error("error while handling an update", exc_info=context.error)


def _lang(update: Update) -> Lang:
    user = update.effective_user
    return language_for(user.language_code if user else None)


def _text_after_command(message: Message) -> str:
    """The message text after its leading `/command[@bot]`, every other character kept."""
    text = message.text or ""
    entities = message.entities
    if entities and entities[0].type == MessageEntity.BOT_COMMAND and entities[0].offset == 0:
        # The command is ASCII, so its UTF-16 length is its length in characters.
        return text[entities[0].length :]
    return text


async def _refuse(message: Message, lang: Lang, error: ParseError) -> None:
    await message.reply_text(
        catalog.text(lang, error.key, **error.params), parse_mode=ParseMode.HTML
    )
