"""/start and /help: what the bot does and how to ask it."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.providers import Capabilities
from bot.telegram import catalog
from bot.telegram.replies import Handlers, command, lang_of


class Guide:
    def __init__(self, *, capabilities: Capabilities, shop_open: bool = False) -> None:
        self._can = capabilities
        self._shop_open = shop_open

    def handlers(self) -> Handlers:
        return [command(["start", "help"], self.help)]

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        lang = lang_of(update)
        shop = catalog.text(lang, "help.shop") if self._shop_open else ""
        inline = ""
        if self._can.text_to_image:
            inline = catalog.text(lang, "help.inline", bot=context.bot.username)
        await message.reply_text(catalog.text(lang, "help") + inline + shop)
