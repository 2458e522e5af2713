"""Presses on inline buttons: the ones under a result (🎬 N, ⬆ upscale, 🔁 again), an
animation's choices, and /settings. Every press is answered first, before any message it
leads to, so that a full chat queue never keeps a person waiting for the button."""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.core import callback_data
from bot.core.callback_data import (
    Animate,
    Buy,
    ChangeSetting,
    HistoryPage,
    NoPrompt,
    PickMode,
    Reroll,
    Resend,
    Upscale,
)
from bot.providers import Capabilities
from bot.telegram import catalog
from bot.telegram.animate import Animations
from bot.telegram.chat_settings import SettingsMenu
from bot.telegram.intake import Intake
from bot.telegram.permissions import Permissions
from bot.telegram.replies import lang_of
from storage.tasks import TaskRepository


class Buttons:
    def __init__(
        self,
        *,
        tasks: TaskRepository,
        intake: Intake,
        animations: Animations,
        settings: SettingsMenu,
        permissions: Permissions,
        capabilities: Capabilities,
    ) -> None:
        self._tasks = tasks
        self._intake = intake
        self._animations = animations
        self._settings = settings
        self._permissions = permissions
        self._can = capabilities

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        lang = lang_of(update)
        action = callback_data.decode(query.data)
        message = query.message
        if action is None or message is None:
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        if isinstance(action, ChangeSetting):
            await self._settings.press(query, message.chat.id, message.chat.type, action, lang)
            return
        if isinstance(action, PickMode):
            await self._animations.pick_mode(query, action, lang)
            return
        if isinstance(action, NoPrompt):
            await self._animations.no_prompt(query, action, lang)
            return
        if isinstance(action, HistoryPage | Resend):  # /history's own handler takes these
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        if isinstance(action, Buy):  # the shop's own handler takes these while it is open
            await query.answer(catalog.text(lang, "shop.pack_gone"), show_alert=True)
            return
        task = await self._tasks.get(action.task_id)
        # A button only acts on a task of the chat it is shown in.
        if task is None or task.chat_id != message.chat.id or not isinstance(message, Message):
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        user_id = query.from_user.id
        if not await self._permissions.may_press(context.bot, task, user_id):
            await query.answer(catalog.text(lang, "button.not_yours"), show_alert=True)
            return
        wanted = {Animate: self._can.image_to_video, Upscale: self._can.upscale}
        if not wanted.get(type(action), True):
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        match action:
            case Animate(_, index):
                draft = await self._animations.open_for_image(
                    task=task, index=index, user_id=user_id, lang=lang, prompt=None
                )
                await query.answer(None if draft else catalog.text(lang, "animate.already_open"))
                if draft is not None:
                    await self._animations.show_choices(context.bot, draft, message.message_id)
            case Upscale():
                await query.answer()
                new = self._intake.upscale_of(task, user_id, lang, message.message_id)
                await self._intake.submit(new, message)
            case Reroll():
                await query.answer(catalog.text(lang, "button.reroll_started"))
                new = self._intake.again(task, user_id, lang, message.message_id)
                await self._intake.submit(new, message)
