"""What the bot's messages look like: status lines, captions, keyboards.

Pure: builds text and Telegram data objects, sends nothing.
"""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import callback_data
from bot.callback_data import Animate, Reroll
from bot.catalog import Lang, text
from bot.constants import MAX_CAPTION_CHARS
from bot.providers.base import UpstreamState

ANIMATE_BUTTONS_PER_ROW = 3


def status_text(lang: Lang, state: UpstreamState | None, elapsed: float) -> str:
    seconds = max(0, int(elapsed))
    if state is UpstreamState.WORKING:
        return text(lang, "status.working", elapsed=seconds)
    return text(lang, "status.queued", elapsed=seconds)


def utf16_length(value: str) -> int:
    """Telegram measures text in UTF-16 code units."""
    return len(value.encode("utf-16-le")) // 2


def shorten(value: str, limit: int) -> str:
    """`value` cut to at most `limit` UTF-16 code units, with an ellipsis if it was cut."""
    if utf16_length(value) <= limit:
        return value
    budget = limit - 1  # room for the ellipsis
    kept = 0
    used = 0
    for char in value:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > budget:
            break
        used += width
        kept += 1
    return value[:kept].rstrip() + "…"


def album_caption(prompt: str) -> str:
    """The prompt as an HTML caption that fits Telegram's caption limit once parsed."""
    return html.escape(shorten(prompt, MAX_CAPTION_CHARS), quote=False)


def result_keyboard(task_id: int, image_count: int) -> InlineKeyboardMarkup:
    animate = [
        InlineKeyboardButton(f"🎬 {i + 1}", callback_data=callback_data.encode(Animate(task_id, i)))
        for i in range(image_count)
    ]
    rows = [
        animate[start : start + ANIMATE_BUTTONS_PER_ROW]
        for start in range(0, len(animate), ANIMATE_BUTTONS_PER_ROW)
    ]
    rows.append([InlineKeyboardButton("🔁", callback_data=callback_data.encode(Reroll(task_id)))])
    return InlineKeyboardMarkup(rows)


def result_text(lang: Lang, aspect_ratio: str) -> str:
    return text(lang, "result.buttons", ratio=aspect_ratio)
