"""Telegram update handlers for everyone: validate, record, hand over to the engine, return.

Nothing here waits for a generation.
"""

from __future__ import annotations

import logging

from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.core import callback_data, catalog
from bot.core.callback_data import Animate, ChangeSetting, NoPrompt, PickMode, Reroll, Upscale
from bot.core.catalog import Lang, language_for
from bot.core.constants import DEFAULT_ASPECT_RATIO
from bot.core.lifecycle import TaskKind
from bot.core.parsing import ParseError, parse_imagine
from bot.engine.billing import GROUP_CHAT_TYPES, Billing
from bot.engine.engine import Engine
from bot.providers import Capabilities
from bot.telegram import rendering
from bot.telegram.admins import ChatAdmins
from bot.telegram.animate import Animations, OwnImageRefused
from bot.telegram.flood import Stopping
from bot.telegram.intake import Intake
from storage.chats import ChatRepository, ChatSettings
from storage.tasks import NewTask, Task, TaskRepository

_log = logging.getLogger(__name__)

# New messages only: an edited `/imagine` must not start (and bill) a second task.
_NEW_MESSAGES = filters.UpdateType.MESSAGE


class Handlers:
    def __init__(
        self,
        *,
        engine: Engine,
        tasks: TaskRepository,
        chats: ChatRepository,
        billing: Billing,
        provider_name: str,
        operator_ids: frozenset[int],
        spicy_allowed: bool,
        default_user_cap: int,
        animations: Animations,
        intake: Intake,
        capabilities: Capabilities,
        admins: ChatAdmins,
    ) -> None:
        self._engine = engine
        self._tasks = tasks
        self._chats = chats
        self._billing = billing
        self._provider_name = provider_name
        self._operators = operator_ids
        self._spicy_allowed = spicy_allowed
        self._default_user_cap = default_user_cap
        self._animations = animations
        self._intake = intake
        self._can = capabilities
        self._admins = admins

    def register(self, application: Application) -> None:  # type: ignore[type-arg]
        application.add_handler(CommandHandler(["start", "help"], self.help, filters=_NEW_MESSAGES))
        application.add_handler(CommandHandler("imagine", self.imagine, filters=_NEW_MESSAGES))
        application.add_handler(CommandHandler("video", self.video, filters=_NEW_MESSAGES))
        application.add_handler(CommandHandler("animate", self.animate, filters=_NEW_MESSAGES))
        application.add_handler(CommandHandler("upscale", self.upscale, filters=_NEW_MESSAGES))
        # "/animate" as the caption of a photo (or of an image sent as a file).
        application.add_handler(
            MessageHandler(
                _NEW_MESSAGES
                & (filters.PHOTO | filters.Document.IMAGE)
                & filters.CaptionRegex(r"^/animate(@\w+)?(\s|$)"),
                self.animate,
            )
        )
        application.add_handler(CommandHandler("cancel", self.cancel, filters=_NEW_MESSAGES))
        application.add_handler(CommandHandler("quota", self.quota, filters=_NEW_MESSAGES))
        application.add_handler(CommandHandler("settings", self.settings, filters=_NEW_MESSAGES))
        application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self.migrated))
        # A reply to an animation's "how should it move?" message: the motion prompt.
        application.add_handler(
            MessageHandler(
                _NEW_MESSAGES & filters.REPLY & filters.TEXT & ~filters.COMMAND, self.reply
            )
        )
        application.add_handler(CallbackQueryHandler(self.button))
        application.add_handler(
            ChatMemberHandler(self.member_changed, ChatMemberHandler.ANY_CHAT_MEMBER)
        )
        application.add_error_handler(self.error)

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        await message.reply_text(catalog.text(_lang(update), "help"))

    async def imagine(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._unavailable(update, self._can.text_to_image, "unavailable.images"):
            return
        await self._from_prompt(update, TaskKind.TEXT_TO_IMAGE, "error.empty_prompt")

    async def video(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._unavailable(update, self._can.text_to_video, "unavailable.video"):
            return
        await self._from_prompt(update, TaskKind.TEXT_TO_VIDEO, "video.empty_prompt")

    async def animate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/animate [motion prompt]: on one of our images, or on a photo of the user's own
        (the command as its caption, or as a reply to it)."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        if await self._unavailable(update, self._can.image_to_video, "unavailable.animate"):
            return
        lang = _lang(update)
        prompt = _text_after_command(message).strip() or None
        replied = message.reply_to_message
        carries_image = bool(message.photo or message.document)
        try:
            if replied is not None and not carries_image:
                ours = await self._tasks.find_by_message(message.chat_id, replied.message_id)
                if ours is not None and ours[0].kind is TaskKind.TEXT_TO_IMAGE:
                    task, index = ours
                    draft = await self._animations.open_for_image(
                        task=task, index=index, user_id=user.id, lang=lang, prompt=prompt
                    )
                    if draft is not None:
                        await self._animations.show_choices(context.bot, draft, message.message_id)
                    return
            image = message if carries_image else replied
            if image is not None and (image.photo or image.document):
                await self._animations.open_for_own_image(
                    context.bot,
                    message=message,
                    image=image,
                    user_id=user.id,
                    lang=lang,
                    prompt=prompt,
                )
                return
            await _reply(message, catalog.text(lang, "animate.usage"))
        except OwnImageRefused as refusal:
            await _reply(message, catalog.text(lang, refusal.key, **refusal.params))

    async def upscale(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/upscale as a reply to a video or image the bot delivered."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        if await self._unavailable(update, self._can.upscale, "unavailable.upscale"):
            return
        lang = _lang(update)
        replied = message.reply_to_message
        found = (
            await self._tasks.find_by_message(message.chat_id, replied.message_id)
            if replied
            else None
        )
        if found is None:
            await _reply(message, catalog.text(lang, "upscale.usage"))
            return
        await self._intake.submit(
            self._upscale_task(found[0], user.id, lang, message.message_id), message
        )

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/cancel as a reply to a status message, or for the member's latest task here."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        lang = _lang(update)
        replied = message.reply_to_message
        if replied is not None:
            task = await self._tasks.find_by_status_message(message.chat_id, replied.message_id)
        else:
            task = await self._tasks.latest_of(message.chat_id, user.id)
        if task is None or not await self._may_press(context.bot, task, user.id):
            await _reply(message, catalog.text(lang, "cancel.nothing"))
            return
        if not await self._engine.cancel(task):
            await _reply(message, catalog.text(lang, "cancel.too_late"))

    async def reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is not None and user is not None:
            await self._animations.prompt_reply(context.bot, message, user.id)

    async def quota(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        balance = await self._billing.balance(message.chat_id, message.chat.type, user.id)
        text = rendering.quota_text(
            _lang(update), balance, self._billing.costs, self._billing.clock()
        )
        await message.reply_text(text)

    async def settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        lang = _lang(update)
        chat = await self._chats.get(message.chat_id)
        await message.reply_text(
            catalog.text(lang, "settings.title"),
            reply_markup=self._settings_keyboard(lang, message.chat.type, chat),
        )

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

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        lang = _lang(update)
        action = callback_data.decode(query.data)
        message = query.message
        if action is None or message is None:
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        if isinstance(action, ChangeSetting):
            await self._change_setting(query, message.chat.id, message.chat.type, action, lang)
            return
        if isinstance(action, PickMode):
            await self._animations.pick_mode(query, action, lang)
            return
        if isinstance(action, NoPrompt):
            await self._animations.no_prompt(query, action, lang)
            return
        task = await self._tasks.get(action.task_id)
        # A button only acts on a task of the chat it is shown in.
        if task is None or task.chat_id != message.chat.id or not isinstance(message, Message):
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        if not await self._may_press(context.bot, task, query.from_user.id):
            await query.answer(catalog.text(lang, "button.not_yours"), show_alert=True)
            return
        wanted = {Animate: self._can.image_to_video, Upscale: self._can.upscale}
        if not wanted.get(type(action), True):
            await query.answer(catalog.text(lang, "button.unknown"))
            return
        match action:
            case Animate(_, index):
                draft = await self._animations.open_for_image(
                    task=task, index=index, user_id=query.from_user.id, lang=lang, prompt=None
                )
                # The press is answered first: the choice is a message, and may wait its turn.
                await query.answer(None if draft else catalog.text(lang, "animate.already_open"))
                if draft is not None:
                    await self._animations.show_choices(context.bot, draft, message.message_id)
            case Upscale():
                await query.answer()
                await self._intake.submit(
                    self._upscale_task(task, query.from_user.id, lang, message.message_id), message
                )
            case Reroll():
                await query.answer(catalog.text(lang, "button.reroll_started"))
                await self._intake.submit(
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
                        mode=task.mode,
                        source_task_id=task.source_task_id,
                        source_index=task.source_index,
                        image_url=task.image_url,
                    ),
                    message,
                )

    async def member_changed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Someone was promoted or demoted (or the bot itself): who may press is read anew."""
        changed = update.chat_member or update.my_chat_member
        if changed is not None:
            self._admins.changed(changed.chat.id, changed.old_chat_member, changed.new_chat_member)

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(context.error, Stopping):
            _log.info("a reply was not sent: the bot is stopping")
            return
        _log.error("error while handling an update", exc_info=context.error)

    # --- helpers ----------------------------------------------------------------------------

    async def _from_prompt(self, update: Update, kind: TaskKind, empty_key: str) -> None:
        """/imagine and /video: `<prompt> [--ar W:H]`."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        lang = _lang(update)
        chat = await self._chats.get(message.chat_id)
        parsed = parse_imagine(
            _text_after_command(message),
            default_ratio=chat.default_ratio or DEFAULT_ASPECT_RATIO,
            allowed=self._can.ratios,
        )
        if isinstance(parsed, ParseError):
            key = empty_key if parsed.key == "error.empty_prompt" else parsed.key
            await _reply(message, catalog.text(lang, key, **parsed.params))
            return
        new = NewTask(
            kind=kind,
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
        await self._intake.submit(new, message)

    async def _unavailable(self, update: Update, available: bool, key: str) -> bool:
        """Tell the user this upstream cannot do it; True if so."""
        message = update.effective_message
        if available or message is None:
            return False
        await _reply(message, catalog.text(_lang(update), key))
        return True

    def _upscale_task(self, source: Task, user_id: int, lang: Lang, answer_to: int) -> NewTask:
        return NewTask(
            kind=TaskKind.UPSCALE,
            provider=self._provider_name,
            chat_id=source.chat_id,
            chat_type=source.chat_type,
            user_id=user_id,
            lang=lang,
            prompt=source.prompt,
            aspect_ratio="",
            message_thread_id=source.message_thread_id,
            request_message_id=answer_to,
            parent_task_id=source.id,
            source_task_id=source.id,
        )

    async def _may_press(self, bot: Bot, task: Task, user_id: int) -> bool:
        if user_id == task.user_id or user_id in self._operators:
            return True
        chat = await self._chats.get(task.chat_id)
        if chat.buttons_for == "everyone":
            return True
        return task.is_group and await self._admins.is_admin(bot, task.chat_id, user_id)

    async def _change_setting(
        self, query: CallbackQuery, chat_id: int, chat_type: str, action: ChangeSetting, lang: Lang
    ) -> None:
        user_id = query.from_user.id
        is_group = chat_type in GROUP_CHAT_TYPES
        may_change = (
            not is_group
            or user_id in self._operators
            or await self._admins.is_admin(query.get_bot(), chat_id, user_id)
        )
        if not may_change:
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
            await query.edit_message_reply_markup(self._settings_keyboard(lang, chat_type, updated))
        except TelegramError as error:
            _log.info("settings keyboard not refreshed: %s", error)

    def _settings_keyboard(
        self, lang: Lang, chat_type: str, chat: ChatSettings
    ) -> InlineKeyboardMarkup:
        return rendering.settings_keyboard(
            lang,
            chat,
            is_group=chat_type in GROUP_CHAT_TYPES,
            spicy_allowed=self._spicy_allowed,
            default_cap=self._default_user_cap,
        )


async def _reply(message: Message, text: str) -> None:
    await message.reply_text(text)


def _lang(update: Update) -> Lang:
    user = update.effective_user
    return language_for(user.language_code if user else None)


def _text_after_command(message: Message) -> str:
    """The message text after its leading `/command[@bot]`, every other character kept."""
    text = message.text or message.caption or ""
    entities = message.entities or message.caption_entities
    if entities and entities[0].type == MessageEntity.BOT_COMMAND and entities[0].offset == 0:
        # The command is ASCII, so its UTF-16 length is its length in characters.
        return text[entities[0].length :]
    return text
