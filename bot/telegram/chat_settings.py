"""/settings: a chat's own choices, as inline buttons that step through their values (in
groups only admins may change them)."""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot.core import callback_data
from bot.core.callback_data import ChangeSetting, Setting
from bot.core.constants import ASPECT_RATIOS, DEFAULT_ASPECT_RATIO, is_group_chat
from bot.telegram import catalog
from bot.telegram.catalog import Lang, text
from bot.telegram.permissions import Permissions
from bot.telegram.replies import Handlers, command, lang_of
from storage.chats import ChatRepository, ChatSettings

_log = logging.getLogger(__name__)

# The values the /settings buttons step through.
CAP_STEPS = (0, 10, 25, 50, 100)


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

    def handlers(self) -> Handlers:
        return [
            command("settings", self.command),
            CallbackQueryHandler(self.press, pattern=callback_data.of(ChangeSetting)),
        ]

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

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A press on the keyboard: that setting moves to its next value (admins only, in a
        group)."""
        query = update.callback_query
        if query is None:
            return
        action = callback_data.decode(query.data)
        message = query.message
        lang = lang_of(update)
        if not isinstance(action, ChangeSetting) or message is None:
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        await self._change(query, message.chat.id, message.chat.type, action, lang)

    async def _change(
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
        updated = await self._chats.save(next_value(action.setting, current))
        await query.answer(catalog.text(lang, "settings.saved"))
        try:
            await query.edit_message_reply_markup(self._keyboard(lang, chat_type, updated))
        except TelegramError as error:
            _log.info("settings keyboard not refreshed: %s", error)

    def _keyboard(self, lang: Lang, chat_type: str, chat: ChatSettings) -> InlineKeyboardMarkup:
        return settings_keyboard(
            lang,
            chat,
            is_group=is_group_chat(chat_type),
            spicy_allowed=self._spicy_allowed,
            default_cap=self._default_user_cap,
        )


def next_value(setting: Setting, chat: ChatSettings) -> ChatSettings:
    """The chat's settings after one press on `setting`: it moves to its next value."""
    match setting:
        case "buttons":
            return replace(
                chat, buttons_for="everyone" if chat.buttons_for == "requester" else "requester"
            )
        case "spicy":
            return replace(chat, allow_spicy=not chat.allow_spicy)
        case "ratio":
            current = chat.default_ratio or DEFAULT_ASPECT_RATIO
            following = ASPECT_RATIOS[(ASPECT_RATIOS.index(current) + 1) % len(ASPECT_RATIOS)]
            return replace(chat, default_ratio=following)
        case "cap":
            current_cap = chat.user_daily_cap or 0
            later = [step for step in CAP_STEPS if step > current_cap]
            return replace(chat, user_daily_cap=later[0] if later else 0)


def settings_keyboard(
    lang: Lang, chat: ChatSettings, *, is_group: bool, spicy_allowed: bool, default_cap: int
) -> InlineKeyboardMarkup:
    def button(label: str, setting: Setting) -> list[InlineKeyboardButton]:
        data = callback_data.encode(ChangeSetting(setting))
        return [InlineKeyboardButton(label, callback_data=data)]

    rows = []
    if is_group:
        key = (
            "settings.buttons_everyone"
            if chat.buttons_for == "everyone"
            else "settings.buttons_requester"
        )
        rows.append(button(text(lang, key), "buttons"))
    if not spicy_allowed:
        rows.append(button(text(lang, "settings.spicy_disabled"), "spicy"))
    else:
        rows.append(
            button(
                text(lang, "settings.spicy_on" if chat.allow_spicy else "settings.spicy_off"),
                "spicy",
            )
        )
    rows.append(
        button(
            text(lang, "settings.ratio", ratio=chat.default_ratio or DEFAULT_ASPECT_RATIO), "ratio"
        )
    )
    if is_group:
        cap = default_cap if chat.user_daily_cap is None else chat.user_daily_cap
        label = text(lang, "settings.cap", cap=cap) if cap else text(lang, "settings.cap_none")
        rows.append(button(label, "cap"))
    return InlineKeyboardMarkup(rows)
