"""What happens to a chat rather than in it: a group becoming a supergroup (its tasks,
credits and settings follow it), and someone promoted or demoted (who may press is read
anew)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ChatMemberHandler, ContextTypes, MessageHandler, filters

from bot.telegram.admins import ChatAdmins
from bot.telegram.replies import Handlers
from storage.chats import ChatRepository

_log = logging.getLogger(__name__)


class ChatEvents:
    def __init__(self, *, chats: ChatRepository, admins: ChatAdmins) -> None:
        self._chats = chats
        self._admins = admins

    def handlers(self) -> Handlers:
        return [
            MessageHandler(filters.StatusUpdate.MIGRATE, self.migrated),
            ChatMemberHandler(self.member_changed, ChatMemberHandler.ANY_CHAT_MEMBER),
        ]

    async def migrated(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        if message.migrate_to_chat_id:
            old, new = message.chat_id, message.migrate_to_chat_id
        elif message.migrate_from_chat_id:
            old, new = message.migrate_from_chat_id, message.chat_id
        else:
            return
        # Telegram sends both halves; the second finds nothing left to move.
        await self._chats.migrate(old, new)
        _log.info("chat %d became supergroup %d; its tasks, credits and settings moved", old, new)

    async def member_changed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Someone was promoted or demoted (or the bot itself): who may press is read anew."""
        changed = update.chat_member or update.my_chat_member
        if changed is not None:
            await self._admins.changed(
                changed.chat.id, changed.old_chat_member, changed.new_chat_member
            )
