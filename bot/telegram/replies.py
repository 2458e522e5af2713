"""Small things every handler needs: the user's language, a plain reply, the text after a
command, and which updates count as new messages."""

from __future__ import annotations

from telegram import Message, MessageEntity, Update
from telegram.ext import filters

from bot.telegram.catalog import Lang, language_for

# New messages only: an edited `/imagine` must not start (and bill) a second task.
NEW_MESSAGES = filters.UpdateType.MESSAGE


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
