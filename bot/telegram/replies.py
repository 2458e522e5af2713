"""Small things every feature needs: the user's language, a plain reply, the text after a
command, which updates count as new messages, and a command's handler."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Message, MessageEntity, Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, filters

from bot.telegram.catalog import Lang, language_for, text

# New messages only: an edited `/imagine` must not start (and bill) a second task.
NEW_MESSAGES = filters.UpdateType.MESSAGE

Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
# What a feature hands the routing table (`handlers.py`): its own handlers, in order.
Handlers = list[BaseHandler[Update, Any, Any]]


def command(names: str | list[str], callback: Callback) -> CommandHandler[Any, None]:
    """A command's handler, for new messages only."""
    return CommandHandler(names, callback, filters=NEW_MESSAGES)


def lang_of(update: Update) -> Lang:
    user = update.effective_user
    return language_for(user.language_code if user else None)


async def reply(message: Message, text: str) -> None:
    await message.reply_text(text)


def text_after_command(message: Message) -> str:
    """The message text after its leading `/command[@bot]`, every other character kept."""
    text = message.text or message.caption or ""
    entities = message.entities or message.caption_entities
    if entities and entities[0].type == MessageEntity.BOT_COMMAND and entities[0].offset == 0:
        # The command is ASCII, so its UTF-16 length is its length in characters.
        return text[entities[0].length :]
    return text


def utf16_length(value: str) -> int:
    """Telegram measures text in UTF-16 code units."""
    return len(value.encode("utf-16-le")) // 2


def shorten(value: str, limit: int) -> str:
    """`value` cut to at most `limit` UTF-16 code units, with an ellipsis if it was cut."""
    if utf16_length(value) <= limit:
        return value
    budget = limit - 1  # room for the ellipsis
    kept = 0
    used = 0
    for char in value:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > budget:
            break
        used += width
        kept += 1
    return value[:kept].rstrip() + "…"


def duration_text(lang: Lang, seconds: float) -> str:
    minutes = max(1, int(seconds + 59) // 60)
    if minutes < 60:
        return text(lang, "duration.minutes", minutes=minutes)
    return text(lang, "duration.hours", hours=minutes // 60, minutes=minutes % 60)
