"""Inline mode: `@bot a red fox in snow` in any chat.

The query is answered at once and never makes anything by itself: a "🎨 Create" result, and
the user's earlier image sets whose prompt matches (sent again by file id, free). Only a
chosen "Create" (`chosen_inline_result`, which needs inline feedback on in BotFather) makes
a task, charged to the user's own private-chat credits; its result is edited into the
inline message (`results.py`). `/start t<task>` from the result's button shows the whole
set in a private chat, with its buttons.
"""

from __future__ import annotations

import html
import logging
import re

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultCachedPhoto,
    InputTextMessageContent,
    Update,
)
from telegram.ext import (
    ChosenInlineResultHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    filters,
)

from bot.core.constants import DEFAULT_ASPECT_RATIO
from bot.core.lifecycle import TaskKind, TaskState
from bot.core.line import LineTooLong
from bot.core.parsing import ImagineRequest, ParseError, parse_imagine
from bot.core.quota import Refusal
from bot.core.task import NewTask
from bot.providers import Capabilities
from bot.telegram import catalog
from bot.telegram.catalog import Lang
from bot.telegram.delivery import Deliverer, Placement
from bot.telegram.history import History
from bot.telegram.intake import Intake, refusal_text
from bot.telegram.replies import NEW_MESSAGES, Handlers, lang_of, reply, shorten
from bot.telegram.results import album_caption
from storage.database import Conflict
from storage.tasks import TaskRepository

_log = logging.getLogger(__name__)

CREATE = "create"  # the id of the "Create" result
MAX_QUERY_CHARS = 256  # Telegram's: a longer inline query arrives cut
MADE_BEFORE = 10  # earlier image sets offered beside "Create"
SEARCHED = 200  # of the user's latest sets, for those
TITLE_CHARS = 60


class Inline:
    def __init__(
        self,
        *,
        tasks: TaskRepository,
        intake: Intake,
        deliverer: Deliverer,
        history: History,
        capabilities: Capabilities,
        cost: int,
    ) -> None:
        self._tasks = tasks
        self._intake = intake
        self._deliverer = deliverer
        self._history = history
        self._can = capabilities
        self._cost = cost

    # --- the query: answered at once, nothing made ---------------------------------------------

    def handlers(self) -> Handlers:
        return [
            # /start t<task>: the button under an inline result, opening the whole set (before
            # the guide's /start).
            CommandHandler(
                "start", self.open, filters=NEW_MESSAGES & filters.Regex(r"^/start t\d{1,18}$")
            ),
            InlineQueryHandler(self.query),
            ChosenInlineResultHandler(self.chosen),
        ]

    async def query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        inline = update.inline_query
        if inline is None:
            return
        lang = lang_of(update)
        bot = context.bot.username
        how_to = InputTextMessageContent(catalog.text(lang, "inline.how_to", bot=bot))
        parsed = self._parse(inline.query)
        results: list[InlineQueryResultArticle | InlineQueryResultCachedPhoto] = []
        if isinstance(parsed, ParseError):
            if parsed.key == "inline.too_long_description":
                title = catalog.text(lang, "inline.too_long_title")
                description = catalog.plain(lang, parsed.key, **parsed.params)
            elif parsed.key == "error.empty_prompt":
                title = catalog.text(lang, "inline.empty_title")
                description = catalog.plain(lang, "inline.empty_description")
            else:
                title = catalog.text(lang, "inline.bad_title")
                description = _plain(catalog.text(lang, parsed.key, **parsed.params))
            results.append(
                InlineQueryResultArticle("explain", title, how_to, description=description[:250])
            )
        else:
            prompt = parsed.prompt
            making = catalog.text(lang, "inline.making", prompt=prompt)
            results.append(
                InlineQueryResultArticle(
                    CREATE,
                    catalog.plain(lang, "inline.create_title", prompt=shorten(prompt, TITLE_CHARS)),
                    InputTextMessageContent(making),
                    description=catalog.plain(lang, "inline.create_description", cost=self._cost),
                    # A keyboard, so that Telegram reports the message's inline_message_id.
                    reply_markup=InlineKeyboardMarkup(
                        [
                            [
                                InlineKeyboardButton(
                                    catalog.text(lang, "inline.open"), url=f"https://t.me/{bot}"
                                )
                            ]
                        ]
                    ),
                )
            )
        words = (parsed.prompt if isinstance(parsed, ImagineRequest) else inline.query).strip()
        if words:
            wanted = words.casefold()
            recent = await self._tasks.images_of(inline.from_user.id, SEARCHED)
            matching = [t for t in recent if wanted in t.prompt.casefold()][:MADE_BEFORE]
            for task in matching:
                photo = next(f for f in task.media_file_ids if f)
                results.append(
                    InlineQueryResultCachedPhoto(
                        f"t{task.id}",
                        photo,
                        title=catalog.plain(
                            lang,
                            "inline.made_before",
                            prompt=shorten(task.prompt, TITLE_CHARS),
                        ),
                        caption=album_caption(task.prompt),
                    )
                )
        # Personal (each user's own results), and never cached long: credits change.
        await inline.answer(results, cache_time=0, is_personal=True)

    def _parse(self, query: str) -> ImagineRequest | ParseError:
        if len(query) >= MAX_QUERY_CHARS:
            return ParseError("inline.too_long_description", {"limit": MAX_QUERY_CHARS})
        if not self._can.text_to_image:
            return ParseError("unavailable.images", {})
        return parse_imagine(query, DEFAULT_ASPECT_RATIO, self._can.ratios)

    # --- a chosen "Create": the task ---------------------------------------------------------

    async def chosen(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chosen = update.chosen_inline_result
        if chosen is None or chosen.result_id != CREATE:
            return
        if chosen.inline_message_id is None:
            _log.warning("a chosen inline result came without its inline_message_id")
            return
        parsed = self._parse(chosen.query)
        if isinstance(parsed, ParseError):
            return  # never offered as "Create"
        if await self._tasks.find_by_inline_message(chosen.inline_message_id) is not None:
            return  # reported again: its task is under way (a repeat must not be refused)
        user = chosen.from_user
        lang = catalog.language_for(user.language_code)
        new = NewTask(
            kind=TaskKind.TEXT_TO_IMAGE,
            chat_id=user.id,  # paid from the user's own private-chat credits
            chat_type="private",
            user_id=user.id,
            lang=lang.value,
            prompt=parsed.prompt,
            aspect_ratio=parsed.aspect_ratio,
            inline_message_id=chosen.inline_message_id,
        )
        try:
            result, now = await self._intake.record(new)
        except Conflict:
            _log.info("inline message %s was chosen before", chosen.inline_message_id)
            return
        if isinstance(result, Refusal | LineTooLong):
            await context.bot.edit_message_text(
                refusal_text(lang, result, now, shop_open=self._intake.shop_open),
                inline_message_id=chosen.inline_message_id,
            )

    # --- /start t<task>: the whole set in a private chat ---------------------------------------

    async def open(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        lang = lang_of(update)
        task_id = int((context.args or ["t0"])[0][1:])
        task = await self._tasks.get(task_id)
        if (
            task is None
            or task.user_id != user.id
            or task.inline_message_id is None
            or task.state is not TaskState.DELIVERED
            or message.chat.id != task.chat_id
        ):
            await reply(message, catalog.text(lang, "history.gone"))
            return
        if any(task.media_file_ids):
            await self._history.resend(context.bot, task, Placement(message.chat.id, None, None))
            return
        sent = await self._deliverer.send_images(
            Placement(message.chat.id, None, None),
            task.result_urls,
            album_caption(task.prompt),
            Lang(task.lang),
        )
        await self._tasks.note_album(task.id, sent.message_ids, sent.file_ids)
        buttons = await self._deliverer.send_buttons(
            Placement(message.chat.id, None, sent.first_message_id),
            task.id,
            len(task.result_urls),
            task.aspect_ratio,
            Lang(task.lang),
            animate_offered=self._can.image_to_video,
        )
        await self._tasks.note_buttons(task.id, buttons.message_id)


def _plain(html_text: str) -> str:
    """A catalog message without its tags, for a place Telegram shows as plain text."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))
