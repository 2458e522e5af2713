"""Setting up an animation: 🎬 under an album or /animate on an image opens a draft and
shows the modes (Fun / Normal / Spicy); picking one starts the task. A motion prompt comes
before that: with `/animate <prompt>`, or as a reply to the draft's message. The step that
starts the task claims the draft, so double presses and racing members create one task.

A user's own photo is downloaded from Telegram, checked (JPEG, PNG or WEBP, at most 10 MB)
and handed to the upstream at a URL: the upstream's upload API where it has one, else a
short-lived link on the bot's own HTTP endpoint. Spicy is never offered for it (the
upstream does not support it for external images).
"""

from __future__ import annotations

import logging

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bot.core import callback_data
from bot.core.callback_data import NoPrompt, PickMode
from bot.core.lifecycle import AnimateMode, TaskKind
from bot.core.task import Task
from bot.engine.pool import Pool
from bot.telegram import catalog
from bot.telegram.catalog import Lang, Markup
from bot.telegram.handover import IMAGE_TYPES, ImageHandover, sniff_image_type
from bot.telegram.imagine import unavailable
from bot.telegram.intake import Intake
from bot.telegram.replies import (
    NEW_MESSAGES,
    Handlers,
    command,
    lang_of,
    reply,
    text_after_command,
)
from storage.chats import ChatRepository
from storage.drafts import Draft, DraftRepository, NewDraft
from storage.tasks import TaskRepository

_log = logging.getLogger(__name__)

MAX_OWN_IMAGE_BYTES = 10 * 1024 * 1024


class OwnImageRefused(Exception):
    """The user's image cannot be animated; `key` is the catalog message saying why."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


class Animations:
    def __init__(
        self,
        *,
        drafts: DraftRepository,
        chats: ChatRepository,
        pool: Pool,
        handover: ImageHandover,
        spicy_allowed: bool,
        intake: Intake,
        tasks: TaskRepository,
    ) -> None:
        self._drafts = drafts
        self._tasks = tasks
        self._chats = chats
        self._pool = pool  # what the accounts can do together
        self._handover = handover  # a user's photo, from Telegram to a URL the upstream takes
        self._spicy_allowed = spicy_allowed
        self._intake = intake

    def handlers(self) -> Handlers:
        return [
            command("animate", self.command),
            # "/animate" as the caption of a photo (or of an image sent as a file).
            MessageHandler(
                NEW_MESSAGES
                & (filters.PHOTO | filters.Document.IMAGE)
                & filters.CaptionRegex(r"^/animate(@\w+)?(\s|$)"),
                self.command,
            ),
            # A reply to an animation's message: the motion prompt.
            MessageHandler(
                NEW_MESSAGES & filters.REPLY & filters.TEXT & ~filters.COMMAND, self.reply
            ),
            CallbackQueryHandler(self.press, pattern=callback_data.of(PickMode, NoPrompt)),
        ]

    # --- the updates that set an animation up ------------------------------------------------

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A mode picked, or "no prompt", on an animation's message."""
        query = update.callback_query
        if query is None:
            return
        lang = lang_of(update)
        match callback_data.decode(query.data):
            case PickMode() as action:
                await self.pick_mode(query, action, lang)
            case NoPrompt() as action:
                await self.no_prompt(query, action, lang)

    async def command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/animate [motion prompt]: on one of our images, or on a photo of the user's own
        (the command as its caption, or as a reply to it)."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        if await unavailable(update, self._pool.capabilities.image_to_video, "unavailable.animate"):
            return
        lang = lang_of(update)
        prompt = text_after_command(message).strip() or None
        replied = message.reply_to_message
        carries_image = bool(message.photo or message.document)
        try:
            if replied is not None and not carries_image:
                ours = await self._tasks.find_by_message(message.chat_id, replied.message_id)
                if ours is not None and ours[0].kind is TaskKind.TEXT_TO_IMAGE:
                    task, index = ours
                    draft = await self.open_for_image(
                        task=task, index=index, user_id=user.id, lang=lang, prompt=prompt
                    )
                    if draft is not None:
                        await self.show_choices(context.bot, draft, message.message_id)
                    return
            image = message if carries_image else replied
            if image is not None and (image.photo or image.document):
                await self.open_for_own_image(
                    context.bot,
                    message=message,
                    image=image,
                    user_id=user.id,
                    lang=lang,
                    prompt=prompt,
                )
                return
            await reply(message, catalog.text(lang, "animate.usage"))
        except OwnImageRefused as refusal:
            await reply(message, catalog.text(lang, refusal.key, **refusal.params))

    async def reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A reply to an animation's message: its motion prompt."""
        message = update.effective_message
        user = update.effective_user
        if message is not None and user is not None:
            await self.prompt_reply(context.bot, message, user.id)

    async def open_for_image(
        self, *, task: Task, index: int, user_id: int, lang: Lang, prompt: str | None
    ) -> Draft | None:
        """🎬 N or /animate on one of our images: the draft, to be shown with
        `show_choices`; None if this member has one open for it already."""
        draft, created = await self._drafts.open(
            NewDraft(
                chat_id=task.chat_id,
                chat_type=task.chat_type,
                user_id=user_id,
                lang=lang,
                message_thread_id=task.message_thread_id,
                source_task_id=task.id,
                source_index=index,
                prompt=prompt,
            )
        )
        return draft if created else None

    async def open_for_own_image(
        self,
        bot: Bot,
        *,
        message: Message,
        image: Message,
        user_id: int,
        lang: Lang,
        prompt: str | None,
    ) -> None:
        """/animate on a photo of the user's own (`image` carries the photo)."""
        url, file_id = await self._hand_over(image)
        draft, _ = await self._drafts.open(
            NewDraft(
                chat_id=message.chat_id,
                chat_type=message.chat.type,
                user_id=user_id,
                lang=lang,
                message_thread_id=message.message_thread_id if message.is_topic_message else None,
                image_url=url,
                image_file_id=file_id,
                prompt=prompt,
            )
        )
        await self.show_choices(bot, draft, message.message_id)

    async def pick_mode(self, query: CallbackQuery, action: PickMode, lang: Lang) -> None:
        draft = await self._owned_open_draft(query, action.draft_id, lang)
        if draft is None:
            return
        if action.mode == AnimateMode.SPICY and not await self._spicy_possible(draft):
            await query.answer(catalog.text(lang, "animate.spicy_unavailable"), show_alert=True)
            return
        # Picking the mode starts the task: a motion prompt, if any, came before it.
        draft = await self._drafts.set_mode(draft.id, action.mode)
        await query.answer()
        if isinstance(query.message, Message):
            await self._start(query.get_bot(), draft, query.message)

    async def no_prompt(self, query: CallbackQuery, action: NoPrompt, lang: Lang) -> None:
        draft = await self._owned_open_draft(query, action.draft_id, lang)
        if draft is None:
            return
        await query.answer()
        if isinstance(query.message, Message):
            await self._start(query.get_bot(), draft, query.message)

    async def prompt_reply(self, bot: Bot, message: Message, user_id: int) -> bool:
        """A reply to a draft's message: the motion prompt. False if it is not for a draft."""
        replied = message.reply_to_message
        if replied is None or not message.text:
            return False
        draft = await self._drafts.find_by_message(message.chat_id, replied.message_id)
        if draft is None or draft.user_id != user_id or draft.state != "open":
            return False
        draft = await self._drafts.set_prompt(draft.id, message.text.strip())
        if draft.mode is not None or not self._pool.capabilities.modes:
            await self._start(bot, draft, message)
        else:
            await self._edit(
                bot, draft, self._choices_text(draft), await self._mode_keyboard(draft)
            )
        return True

    # --- helpers ------------------------------------------------------------------------------

    async def _start(self, bot: Bot, draft: Draft, answer_to: Message) -> None:
        """Claim the draft and create its task; the refusal (no credits) reopens it."""
        if not await self._drafts.claim(draft.id):
            return  # a twin press got here first
        if not await self._intake.submit(self._intake.animation(draft), answer_to):
            await self._drafts.reopen(draft.id)
            return
        lang = Lang(draft.lang)
        prompt_line = (
            catalog.text(lang, "animate.prompt_line", prompt=draft.prompt) if draft.prompt else ""
        )
        await self._edit(
            bot,
            draft,
            catalog.text(
                lang,
                "animate.started",
                subject=_subject(draft),
                mode=_mode_name(draft),
                prompt_line=Markup(prompt_line),
            ),
            None,
        )

    async def _owned_open_draft(
        self, query: CallbackQuery, draft_id: int, lang: Lang
    ) -> Draft | None:
        draft = await self._drafts.get(draft_id)
        message = query.message
        if draft is None or message is None or draft.chat_id != message.chat.id:
            await query.answer(catalog.text(lang, "button.unknown"))
            return None
        if draft.user_id != query.from_user.id:
            await query.answer(catalog.text(lang, "button.not_yours"), show_alert=True)
            return None
        if draft.state != "open":
            await query.answer(catalog.text(lang, "animate.used"))
            return None
        return draft

    async def _spicy_possible(self, draft: Draft) -> bool:
        if not self._spicy_allowed or draft.image_url is not None:
            return False
        if AnimateMode.SPICY not in self._pool.capabilities.modes:
            return False
        return (await self._chats.get(draft.chat_id)).allow_spicy

    async def show_choices(self, bot: Bot, draft: Draft, answer_to: int) -> None:
        """Post the draft's message: the modes (picking one starts the task), and how to
        add a motion prompt first."""
        if self._pool.capabilities.modes:
            text, markup = self._choices_text(draft), await self._mode_keyboard(draft)
        else:
            # The upstream takes no mode: straight to the motion prompt.
            text, markup = self._prompt_step(draft)
        message = await bot.send_message(
            draft.chat_id,
            text,
            reply_markup=markup,
            message_thread_id=draft.message_thread_id,
            reply_parameters=ReplyParameters(answer_to, allow_sending_without_reply=True),
        )
        await self._drafts.set_message(draft.id, message.message_id)

    def _prompt_step(self, draft: Draft) -> tuple[str, InlineKeyboardMarkup]:
        """Ask for the motion prompt (or offer to start with the one given)."""
        lang = Lang(draft.lang)
        if draft.prompt is not None:
            text, button = self._choices_text(draft, ask=False), "button.start"
        else:
            text = catalog.text(lang, "animate.ask_prompt_no_mode", subject=_subject(draft))
            button = "button.no_prompt"
        start = InlineKeyboardButton(
            catalog.text(lang, button), callback_data=callback_data.encode(NoPrompt(draft.id))
        )
        return text, InlineKeyboardMarkup([[start]])

    def _choices_text(self, draft: Draft, *, ask: bool = True) -> str:
        lang = Lang(draft.lang)
        prompt_line = (
            catalog.text(lang, "animate.prompt_line", prompt=draft.prompt) if draft.prompt else ""
        )
        if not ask:
            key = "animate.ready"
        elif draft.prompt:
            key = "animate.choose_mode_prompted"
        else:
            key = "animate.choose_mode"
        return catalog.text(lang, key, subject=_subject(draft), prompt_line=Markup(prompt_line))

    async def _mode_keyboard(self, draft: Draft) -> InlineKeyboardMarkup:
        lang = Lang(draft.lang)
        spicy = await self._spicy_possible(draft)
        modes = [
            mode
            for mode in AnimateMode
            if mode in self._pool.capabilities.modes and (mode != AnimateMode.SPICY or spicy)
        ]
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        catalog.text(lang, _MODE_LABELS[mode]),
                        callback_data=callback_data.encode(PickMode(draft.id, mode)),
                    )
                    for mode in modes
                ]
            ]
        )

    async def _edit(
        self, bot: Bot, draft: Draft, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        if draft.message_id is None:
            return
        try:
            await bot.edit_message_text(
                text,
                draft.chat_id,
                draft.message_id,
                reply_markup=markup,
            )
        except TelegramError as error:
            _log.info("draft %d: message not updated: %s", draft.id, error)

    async def _hand_over(self, image: Message) -> tuple[str, str]:
        """Download the user's image from Telegram, check it, and put it at a URL the
        upstream can fetch: that URL and the image's file id. Raises `OwnImageRefused`."""
        if image.photo:
            file_id, size = image.photo[-1].file_id, image.photo[-1].file_size
        elif image.document:
            if image.document.mime_type not in IMAGE_TYPES:
                raise OwnImageRefused("animate.bad_type")
            file_id, size = image.document.file_id, image.document.file_size
        else:
            raise OwnImageRefused("animate.usage")
        if size is not None and size > MAX_OWN_IMAGE_BYTES:
            raise OwnImageRefused("animate.too_large", size=f"{size / 1024 / 1024:.1f}")
        if not self._handover.possible:
            raise OwnImageRefused("animate.own_unavailable")
        try:
            content = await self._handover.download(file_id)
        except TelegramError as error:
            _log.info("could not download a user's image: %s", error)
            raise OwnImageRefused("animate.download_failed") from error
        if len(content) > MAX_OWN_IMAGE_BYTES:
            raise OwnImageRefused("animate.too_large", size=f"{len(content) / 1024 / 1024:.1f}")
        content_type = sniff_image_type(content)
        if content_type is None:
            raise OwnImageRefused("animate.bad_type")
        url = await self._handover.publish(content, content_type)
        if url is None:
            raise OwnImageRefused("animate.own_unavailable")
        return url, file_id


def _subject(draft: Draft) -> str:
    lang = Lang(draft.lang)
    if draft.image_url is not None:
        return catalog.text(lang, "animate.subject_photo")
    return catalog.text(lang, "animate.subject_image", index=(draft.source_index or 0) + 1)


# Each mode's button (its emoji first), by the catalog's key.
_MODE_LABELS = {
    AnimateMode.FUN: "mode.fun",
    AnimateMode.NORMAL: "mode.normal",
    AnimateMode.SPICY: "mode.spicy",
}


def _mode_name(draft: Draft) -> str:
    mode = AnimateMode(draft.mode or AnimateMode.NORMAL)
    label = catalog.text(Lang(draft.lang), _MODE_LABELS[mode])
    return label.split(" ", 1)[1]  # without its emoji
