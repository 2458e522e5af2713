"""A result and its buttons: how a delivered set or video looks (its caption, the 🎬 N / 🔁
and ⬆ / 🔁 keyboards, the line under an album), and what a press on those buttons does
(animate one image, upscale, again). Every press is answered first, before any message it
leads to."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot.core import callback_data
from bot.core.callback_data import Animate, Reroll, Upscale
from bot.core.constants import MAX_CAPTION_CHARS
from bot.core.lifecycle import TaskKind
from bot.providers import Capabilities
from bot.telegram import catalog
from bot.telegram.animate import Animations
from bot.telegram.catalog import Lang, text
from bot.telegram.intake import Intake
from bot.telegram.permissions import Permissions
from bot.telegram.replies import Handlers, lang_of, shorten
from storage.tasks import TaskRepository

ANIMATE_BUTTONS_PER_ROW = 3


def album_caption(prompt: str) -> str | None:
    """The prompt as an HTML caption that fits Telegram's caption limit once parsed; None
    for no prompt (a video animated without a motion prompt): no caption at all."""
    if not prompt:
        return None
    return html.escape(shorten(prompt, MAX_CAPTION_CHARS), quote=False)


def result_keyboard(
    task_id: int, image_count: int, *, animate_offered: bool
) -> InlineKeyboardMarkup:
    """🎬 per image (where the upstream can animate), then 🔁."""
    animate = [
        InlineKeyboardButton(f"🎬 {i + 1}", callback_data=callback_data.encode(Animate(task_id, i)))
        for i in range(image_count if animate_offered else 0)
    ]
    rows = [
        animate[start : start + ANIMATE_BUTTONS_PER_ROW]
        for start in range(0, len(animate), ANIMATE_BUTTONS_PER_ROW)
    ]
    rows.append([InlineKeyboardButton("🔁", callback_data=callback_data.encode(Reroll(task_id)))])
    return InlineKeyboardMarkup(rows)


def video_keyboard(
    lang: Lang, task_id: int, kind: TaskKind, *, upscale_offered: bool
) -> InlineKeyboardMarkup | None:
    """⬆ Upscale (where the upstream can) and 🔁 under a video; nothing under an upscaled one."""
    if kind is TaskKind.UPSCALE:
        return None
    again = callback_data.encode(Reroll(task_id))
    row = [InlineKeyboardButton(text(lang, "button.again"), callback_data=again)]
    if upscale_offered:
        upscale = callback_data.encode(Upscale(task_id))
        row.insert(0, InlineKeyboardButton(text(lang, "button.upscale"), callback_data=upscale))
    return InlineKeyboardMarkup([row])


def result_text(lang: Lang, aspect_ratio: str) -> str:
    return text(lang, "result.buttons", ratio=aspect_ratio)


class ResultButtons:
    """🎬 N, ⬆ and 🔁 under a result: each acts on its task, for whoever may press it."""

    def __init__(
        self,
        *,
        tasks: TaskRepository,
        intake: Intake,
        animations: Animations,
        permissions: Permissions,
        capabilities: Capabilities,
    ) -> None:
        self._tasks = tasks
        self._intake = intake
        self._animations = animations
        self._permissions = permissions
        self._can = capabilities

    def handlers(self) -> Handlers:
        return [
            CallbackQueryHandler(self.press, pattern=callback_data.of(Animate, Upscale, Reroll))
        ]

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        lang = lang_of(update)
        action = callback_data.decode(query.data)
        message = query.message
        if not isinstance(action, Animate | Upscale | Reroll) or message is None:
            await query.answer(catalog.text(lang, "button.unknown"))
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
