"""Who may do what in a chat: press a result's buttons (its requester, the chat's admins,
operators, or everyone when the chat says so) and change the chat's settings (in groups,
admins and operators). Admins come from `ChatAdmins`, cached: no Bot API call per press."""

from __future__ import annotations

from telegram import Bot

from bot.core.constants import is_group_chat
from bot.core.task import Task
from bot.telegram.admins import ChatAdmins
from storage.chats import ChatRepository


class Permissions:
    def __init__(
        self, *, admins: ChatAdmins, chats: ChatRepository, operator_ids: frozenset[int]
    ) -> None:
        self._admins = admins
        self._chats = chats
        self._operators = operator_ids

    async def may_press(self, bot: Bot, task: Task, user_id: int) -> bool:
        """May `user_id` use the buttons under `task`'s result (or cancel it)?"""
        if user_id == task.user_id or user_id in self._operators:
            return True
        chat = await self._chats.get(task.chat_id)
        if chat.buttons_for == "everyone":
            return True
        return task.is_group and await self._admins.is_admin(bot, task.chat_id, user_id)

    async def may_change_settings(
        self, bot: Bot, chat_id: int, chat_type: str, user_id: int
    ) -> bool:
        if not is_group_chat(chat_type) or user_id in self._operators:
            return True
        return await self._admins.is_admin(bot, chat_id, user_id)
