"""/settings: a chat's own choices, as inline buttons that step through their values (in
groups only admins may change them)."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.core.callback_data import ChangeSetting
from bot.core.constants import is_group_chat
from bot.telegram import catalog, rendering
from bot.telegram.catalog import Lang
from bot.telegram.permissions import Permissions
from bot.telegram.replies import lang_of
from storage.chats import ChatRepository, ChatSettings

_log = logging.getLogger(__name__)


class SettingsMenu:
    def __init__(
        self,
        *,
        chats: ChatRepository,
        permissions: Permissions,
        spicy_allowed: bool,
        default_user_cap: int,
    ) -> None:
        self._chats = chats
        self._permissions = permissions
        self._spicy_allowed = spicy_allowed
        self._default_user_cap = default_user_cap

    async def command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        lang = lang_of(update)
        chat = await self._chats.get(message.chat_id)
        await message.reply_text(
            catalog.text(lang, "settings.title"),
            reply_markup=self._keyboard(lang, message.chat.type, chat),
        )

    async def press(
        self, query: CallbackQuery, chat_id: int, chat_type: str, action: ChangeSetting, lang: Lang
    ) -> None:
        is_group = is_group_chat(chat_type)
        if not await self._permissions.may_change_settings(
            query.get_bot(), chat_id, chat_type, query.from_user.id
        ):
            await query.answer(catalog.text(lang, "settings.only_admins"), show_alert=True)
            return
        if action.setting == "spicy" and not self._spicy_allowed:
            await query.answer(catalog.text(lang, "settings.spicy_unavailable"))
            return
        if action.setting in ("buttons", "cap") and not is_group:
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        current = await self._chats.get(chat_id)
        updated = await self._chats.save(rendering.next_value(action.setting, current))
        await query.answer(catalog.text(lang, "settings.saved"))
        try:
            await query.edit_message_reply_markup(self._keyboard(lang, chat_type, updated))
        except TelegramError as error:
            _log.info("settings keyboard not refreshed: %s", error)

    def _keyboard(self, lang: Lang, chat_type: str, chat: ChatSettings) -> InlineKeyboardMarkup:
        return rendering.settings_keyboard(
            lang,
            chat,
            is_group=is_group_chat(chat_type),
            spicy_allowed=self._spicy_allowed,
            default_cap=self._default_user_cap,
        )
