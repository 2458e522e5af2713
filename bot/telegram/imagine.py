"""/imagine, /video, /upscale and /cancel: asking for a generation, and taking one back
while it waits. Each validates, hands a task to the intake and returns: nothing here waits
for a generation. (The buttons under a result are `results.py`'s; /animate is
`animate.py`'s.)"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.core.constants import DEFAULT_ASPECT_RATIO
from bot.core.lifecycle import TaskKind
from bot.core.parsing import ParseError, parse_imagine
from bot.engine.engine import Engine
from bot.providers import Capabilities
from bot.telegram import catalog
from bot.telegram.intake import Intake
from bot.telegram.permissions import Permissions
from bot.telegram.replies import Handlers, command, lang_of, reply, text_after_command
from storage.chats import ChatRepository
from storage.tasks import TaskRepository


class Imagine:
    def __init__(
        self,
        *,
        engine: Engine,
        tasks: TaskRepository,
        chats: ChatRepository,
        intake: Intake,
        permissions: Permissions,
        capabilities: Capabilities,
    ) -> None:
        self._engine = engine
        self._tasks = tasks
        self._chats = chats
        self._intake = intake
        self._permissions = permissions
        self._can = capabilities

    def handlers(self) -> Handlers:
        return [
            command("imagine", self.imagine),
            command("video", self.video),
            command("upscale", self.upscale),
            command("cancel", self.cancel),
        ]

    async def imagine(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await unavailable(update, self._can.text_to_image, "unavailable.images"):
            return
        await self._from_prompt(update, TaskKind.TEXT_TO_IMAGE, "error.empty_prompt")

    async def video(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await unavailable(update, self._can.text_to_video, "unavailable.video"):
            return
        await self._from_prompt(update, TaskKind.TEXT_TO_VIDEO, "video.empty_prompt")

    async def upscale(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/upscale as a reply to a video or image the bot delivered."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        if await unavailable(update, self._can.upscale, "unavailable.upscale"):
            return
        lang = lang_of(update)
        replied = message.reply_to_message
        found = (
            await self._tasks.find_by_message(message.chat_id, replied.message_id)
            if replied
            else None
        )
        if found is None:
            await reply(message, catalog.text(lang, "upscale.usage"))
            return
        new = self._intake.upscale_of(found[0], user.id, lang, message.message_id)
        await self._intake.submit(new, message)

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/cancel as a reply to a status message, or for the member's latest task here."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        lang = lang_of(update)
        replied = message.reply_to_message
        if replied is not None:
            task = await self._tasks.find_by_status_message(message.chat_id, replied.message_id)
        else:
            task = await self._tasks.latest_of(message.chat_id, user.id)
        if task is None or not await self._permissions.may_press(context.bot, task, user.id):
            await reply(message, catalog.text(lang, "cancel.nothing"))
            return
        if not await self._engine.cancel(task):
            await reply(message, catalog.text(lang, "cancel.too_late"))

    async def _from_prompt(self, update: Update, kind: TaskKind, empty_key: str) -> None:
        """/imagine and /video: `<prompt> [--ar W:H]`."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        lang = lang_of(update)
        chat = await self._chats.get(message.chat_id)
        parsed = parse_imagine(
            text_after_command(message),
            default_ratio=chat.default_ratio or DEFAULT_ASPECT_RATIO,
            allowed=self._can.ratios,
        )
        if isinstance(parsed, ParseError):
            key = empty_key if parsed.key == "error.empty_prompt" else parsed.key
            await reply(message, catalog.text(lang, key, **parsed.params))
            return
        await self._intake.submit(
            self._intake.from_prompt(kind, parsed, message, user.id, lang), message
        )


async def unavailable(update: Update, available: bool, key: str) -> bool:
    """Tell the user this upstream cannot do it; True if so."""
    message = update.effective_message
    if available or message is None:
        return False
    await reply(message, catalog.text(lang_of(update), key))
    return True
