"""Which update goes where: the routing table. Each feature (a module with its handlers
and views together: `imagine.py`, `results.py`, `animate.py`, `history.py`, `inline.py`,
`shop.py`, `chat_settings.py`, `quota.py`, `guide.py`, `chat_events.py`, `admin.py`) hands
over its own handlers (`Feature.handlers()`); they are added in the order given, and the
first that matches an update takes it. Here too: the answer to a press no feature takes,
and what happens to an error no handler caught.

Nothing here waits for a generation: the handlers validate, hand a task to the intake, and
return."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot.core import callback_data
from bot.core.callback_data import Buy
from bot.telegram import catalog
from bot.telegram.flood import Stopping
from bot.telegram.replies import Handlers, lang_of

_log = logging.getLogger(__name__)


class Feature(Protocol):
    def handlers(self) -> Handlers:
        """Its handlers, in the order they are tried."""
        ...


def register(application: Application, features: Sequence[Feature]) -> None:  # type: ignore[type-arg]
    for feature in features:
        application.add_handlers(feature.handlers())
    application.add_handler(CallbackQueryHandler(unknown_press))
    application.add_error_handler(error)


async def unknown_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button no feature takes now: an old one, another bot's, or a pack while the shop is
    closed. Answered all the same, so the button stops spinning."""
    query = update.callback_query
    if query is None:
        return
    lang = lang_of(update)
    if isinstance(callback_data.decode(query.data), Buy):
        await query.answer(catalog.text(lang, "shop.pack_gone"), show_alert=True)
        return
    await query.answer(catalog.text(lang, "button.unknown"))


async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    if isinstance(context.error, Stopping):
        _log.info("a reply was not sent: the bot is stopping")
        return
    _log.error("error while handling an update", exc_info=context.error)
