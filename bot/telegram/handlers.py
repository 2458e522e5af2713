"""Which update goes where: the routing table for everyone's updates (operators' commands
are registered by `admin.py`), and what happens to an error no handler caught.

Nothing here waits for a generation: the handlers validate, hand a task to the intake, and
return."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    ChosenInlineResultHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    PreCheckoutQueryHandler,
    filters,
)

from bot.core.callback_data import BUY_PATTERN, HISTORY_PATTERN
from bot.telegram.admins import ChatAdmins
from bot.telegram.animate import Animations
from bot.telegram.buttons import Buttons
from bot.telegram.chat_settings import SettingsMenu
from bot.telegram.commands import Commands
from bot.telegram.flood import Stopping
from bot.telegram.history import History
from bot.telegram.inline import Inline
from bot.telegram.replies import NEW_MESSAGES
from bot.telegram.shop import Shop

_log = logging.getLogger(__name__)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def register(
    application: Application,  # type: ignore[type-arg]
    *,
    commands: Commands,
    animations: Animations,
    settings: SettingsMenu,
    buttons: Buttons,
    admins: ChatAdmins,
    shop: Shop,
    history: History,
    inline: Inline,
) -> None:
    def command(names: str | list[str], callback: Handler) -> None:
        application.add_handler(CommandHandler(names, callback, filters=NEW_MESSAGES))

    # /start t<task>: the button under an inline result, opening the whole set.
    application.add_handler(
        CommandHandler(
            "start", inline.open, filters=NEW_MESSAGES & filters.Regex(r"^/start t\d{1,18}$")
        )
    )
    command(["start", "help"], commands.help)
    application.add_handler(InlineQueryHandler(inline.query))
    application.add_handler(ChosenInlineResultHandler(inline.chosen))
    command("imagine", commands.imagine)
    command("video", commands.video)
    command("animate", animations.command)
    command("upscale", commands.upscale)
    command("cancel", commands.cancel)
    command("quota", commands.quota)
    command("settings", settings.command)
    command("history", history.command)
    command("buy", shop.buy)
    command("paysupport", shop.paysupport)
    command("terms", shop.terms)
    application.add_handler(PreCheckoutQueryHandler(shop.pre_checkout))
    application.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, shop.paid))
    # "/animate" as the caption of a photo (or of an image sent as a file).
    application.add_handler(
        MessageHandler(
            NEW_MESSAGES
            & (filters.PHOTO | filters.Document.IMAGE)
            & filters.CaptionRegex(r"^/animate(@\w+)?(\s|$)"),
            animations.command,
        )
    )
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, commands.migrated))
    # A reply to an animation's message: the motion prompt.
    application.add_handler(
        MessageHandler(
            NEW_MESSAGES & filters.REPLY & filters.TEXT & ~filters.COMMAND, animations.reply
        )
    )
    application.add_handler(CallbackQueryHandler(shop.press, pattern=BUY_PATTERN))
    application.add_handler(CallbackQueryHandler(history.press, pattern=HISTORY_PATTERN))
    application.add_handler(CallbackQueryHandler(buttons.press))

    async def member_changed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Someone was promoted or demoted (or the bot itself): who may press is read anew."""
        changed = update.chat_member or update.my_chat_member
        if changed is not None:
            await admins.changed(changed.chat.id, changed.old_chat_member, changed.new_chat_member)

    application.add_handler(ChatMemberHandler(member_changed, ChatMemberHandler.ANY_CHAT_MEMBER))
    application.add_error_handler(error)


async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    if isinstance(context.error, Stopping):
        _log.info("a reply was not sent: the bot is stopping")
        return
    _log.error("error while handling an update", exc_info=context.error)
