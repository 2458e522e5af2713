"""What the bot's messages look like: status lines, captions, keyboards.

Pure: builds text and Telegram data objects, sends nothing.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core import callback_data
from bot.core.callback_data import (
    Animate,
    Buy,
    ChangeSetting,
    HistoryPage,
    Reroll,
    Resend,
    Setting,
    Upscale,
)
from bot.core.constants import ASPECT_RATIOS, DEFAULT_ASPECT_RATIO, MAX_CAPTION_CHARS
from bot.core.lifecycle import TaskKind
from bot.core.line import LineTooLong
from bot.core.quota import Balance, Costs, Refusal, next_renewal
from bot.core.shop import Pack, image_sets
from bot.providers.base import UpstreamState
from bot.telegram.catalog import Lang, Markup, plain, text
from storage.chats import ChatSettings
from storage.payments import StarsDay
from storage.stats import AccountStats, ChatStats, DayStats
from storage.tasks import Task

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


def duration_text(lang: Lang, seconds: float) -> str:
    minutes = max(1, int(seconds + 59) // 60)
    if minutes < 60:
        return text(lang, "duration.minutes", minutes=minutes)
    return text(lang, "duration.hours", hours=minutes // 60, minutes=minutes % 60)


def quota_text(
    lang: Lang,
    balance: Balance,
    costs: Costs,
    now: float,
    buyers: Sequence[tuple[str, int]] = (),
) -> str:
    """/quota: the day's allowance, granted and purchased credits apart, and in a group
    who bought the purchased ones."""
    user_line = ""
    if balance.user_cap is not None:
        user_line = text(
            lang, "quota.user_line", user_left=balance.user_left, user_cap=balance.user_cap
        )
    purchased_line = ""
    if balance.purchased or buyers:
        purchased_line = text(lang, "quota.purchased_line", purchased=balance.purchased)
        if buyers:
            who = ", ".join(f"{name} ({credits})" for name, credits in buyers)
            purchased_line += text(lang, "quota.buyers_line", buyers=who)
    return text(
        lang,
        "quota.summary",
        daily_left=balance.daily_left,
        daily_limit=balance.daily_limit,
        granted=balance.granted,
        purchased_line=Markup(purchased_line),
        user_line=Markup(user_line),
        cost_image=costs.text_to_image,
        renews_in=duration_text(lang, next_renewal(now) - now),
    )


def refusal_text(
    lang: Lang, refusal: Refusal | LineTooLong, now: float, *, shop_open: bool = False
) -> str:
    if isinstance(refusal, LineTooLong):
        return text(lang, "line.too_long", wait=duration_text(lang, refusal.wait))
    balance = refusal.balance
    renews_in = duration_text(lang, next_renewal(now) - now)
    if refusal.reason == "user":
        return text(
            lang,
            "quota.user_cap_reached",
            user_left=balance.user_left,
            user_cap=balance.user_cap,
            cost=refusal.cost,
            renews_in=renews_in,
        )
    return text(
        lang,
        "quota.out_of_credits",
        cost=refusal.cost,
        available=balance.available,
        daily_left=balance.daily_left,
        daily_limit=balance.daily_limit,
        granted=balance.granted,
        purchased=balance.purchased,
        renews_in=renews_in,
        buy_hint=Markup(text(lang, "shop.buy_hint") if shop_open else ""),
    )


# The values the /settings buttons step through.
CAP_STEPS = (0, 10, 25, 50, 100)


def next_value(setting: Setting, chat: ChatSettings) -> ChatSettings:
    """The chat's settings after one press on `setting`: it moves to its next value."""
    match setting:
        case "buttons":
            return replace(
                chat, buttons_for="everyone" if chat.buttons_for == "requester" else "requester"
            )
        case "spicy":
            return replace(chat, allow_spicy=not chat.allow_spicy)
        case "ratio":
            current = chat.default_ratio or DEFAULT_ASPECT_RATIO
            following = ASPECT_RATIOS[(ASPECT_RATIOS.index(current) + 1) % len(ASPECT_RATIOS)]
            return replace(chat, default_ratio=following)
        case "cap":
            current_cap = chat.user_daily_cap or 0
            later = [step for step in CAP_STEPS if step > current_cap]
            return replace(chat, user_daily_cap=later[0] if later else 0)


def settings_keyboard(
    lang: Lang, chat: ChatSettings, *, is_group: bool, spicy_allowed: bool, default_cap: int
) -> InlineKeyboardMarkup:
    def button(label: str, setting: Setting) -> list[InlineKeyboardButton]:
        data = callback_data.encode(ChangeSetting(setting))
        return [InlineKeyboardButton(label, callback_data=data)]

    rows = []
    if is_group:
        key = (
            "settings.buttons_everyone"
            if chat.buttons_for == "everyone"
            else "settings.buttons_requester"
        )
        rows.append(button(text(lang, key), "buttons"))
    if not spicy_allowed:
        rows.append(button(text(lang, "settings.spicy_disabled"), "spicy"))
    else:
        rows.append(
            button(
                text(lang, "settings.spicy_on" if chat.allow_spicy else "settings.spicy_off"),
                "spicy",
            )
        )
    rows.append(
        button(
            text(lang, "settings.ratio", ratio=chat.default_ratio or DEFAULT_ASPECT_RATIO), "ratio"
        )
    )
    if is_group:
        cap = default_cap if chat.user_daily_cap is None else chat.user_daily_cap
        label = text(lang, "settings.cap", cap=cap) if cap else text(lang, "settings.cap_none")
        rows.append(button(label, "cap"))
    return InlineKeyboardMarkup(rows)


def stats_text(
    lang: Lang,
    days: int,
    daily: list[DayStats],
    top: list[ChatStats],
    accounts: list[AccountStats],
    stars: Sequence[StarsDay] = (),
) -> str:
    tasks_by_day = {d.day: d for d in daily}
    stars_by_day = {d.day: d for d in stars}
    if tasks_by_day or stars_by_day:
        lines = ["day         tasks  failed  credits  stars"]
        for day in sorted(tasks_by_day.keys() | stars_by_day.keys()):
            d, paid = tasks_by_day.get(day), stars_by_day.get(day)
            tasks, failed, credits = (d.tasks, d.failed, d.credits) if d else (0, 0, 0)
            received = paid.stars if paid else 0
            refunded = f" (-{paid.refunded})" if paid and paid.refunded else ""
            lines.append(f"{day}  {tasks:>5}  {failed:>6}  {credits:>7}  {received:>5}{refunded}")
        table = "\n".join(lines)
    else:
        table = text(lang, "admin.stats_empty")
    if top:
        top_table = "\n".join(f"{c.chat_id:>15}  {c.tasks:>5}  {c.credits:>7}" for c in top)
    else:
        top_table = text(lang, "admin.stats_empty")
    if accounts:
        width = max(len("account"), *(len(a.account) for a in accounts))
        rows = [f"{'account':<{width}}  tasks  failed"]
        rows += [f"{a.account:<{width}}  {a.tasks:>5}  {a.failed:>6}" for a in accounts]
        per_account = "\n".join(rows)
    else:
        per_account = text(lang, "admin.stats_empty")
    return text(lang, "admin.stats", days=days, table=table, top=top_table, accounts=per_account)


def shop_menu(
    lang: Lang, packs: Sequence[Pack], cost_of_a_set: int, *, group: bool
) -> tuple[str, InlineKeyboardMarkup]:
    """/buy: what each pack buys, and a button per pack."""
    lines = "\n".join(
        text(
            lang,
            "shop.pack_line",
            credits=Markup(text(lang, "count.credits", n=p.credits)),
            sets=Markup(text(lang, "count.image_sets", n=image_sets(p.credits, cost_of_a_set))),
            stars=p.stars,
        )
        for p in packs
    )
    key = "shop.menu_group" if group else "shop.menu_private"
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    text(lang, "shop.button", credits=p.credits, stars=p.stars),
                    callback_data=callback_data.encode(Buy(p.credits, p.stars)),
                )
            ]
            for p in packs
        ]
    )
    return text(lang, key, cost=cost_of_a_set, packs=Markup(lines)), keyboard


def receipt_text(
    lang: Lang, buyer: str, credits: int, stars: int, balance: Balance, *, group: bool
) -> str:
    return text(
        lang,
        "shop.receipt_group" if group else "shop.receipt_private",
        buyer=buyer,
        credits=credits,
        stars=stars,
        available=balance.available,
        purchased=balance.purchased,
        granted=balance.granted,
        daily_left=balance.daily_left,
    )


HISTORY_PAGE_SIZE = 5
HISTORY_PROMPT_CHARS = 40


def history_page(
    lang: Lang, user_id: int, page: int, tasks: Sequence[Task], total: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """/history: a page of the member's results here, a button each, and ◀ ▶ between pages."""
    if total == 0:
        return text(lang, "history.empty"), None
    pages = (total + HISTORY_PAGE_SIZE - 1) // HISTORY_PAGE_SIZE
    rows = [
        [
            InlineKeyboardButton(
                plain(
                    lang,
                    "history.item_images"
                    if t.kind is TaskKind.TEXT_TO_IMAGE
                    else "history.item_video",
                    prompt=shorten(t.prompt or "…", HISTORY_PROMPT_CHARS),
                    day=datetime.fromtimestamp(t.created_at, UTC).strftime("%d.%m"),
                ),
                callback_data=callback_data.encode(Resend(t.id)),
            )
        ]
        for t in tasks
    ]
    turns = []
    if page > 0:
        turns.append(
            InlineKeyboardButton(
                text(lang, "history.previous"),
                callback_data=callback_data.encode(HistoryPage(user_id, page - 1)),
            )
        )
    if page + 1 < pages:
        turns.append(
            InlineKeyboardButton(
                text(lang, "history.next"),
                callback_data=callback_data.encode(HistoryPage(user_id, page + 1)),
            )
        )
    if turns:
        rows.append(turns)
    title = text(lang, "history.title", page=page + 1, pages=pages)
    return title, InlineKeyboardMarkup(rows)


def open_in_bot_keyboard(lang: Lang, bot_username: str, task_id: int) -> InlineKeyboardMarkup:
    """Under an inline result: the bot in a private chat, with the whole set and its buttons."""
    url = f"https://t.me/{bot_username}?start=t{task_id}"
    return InlineKeyboardMarkup([[InlineKeyboardButton(text(lang, "inline.open"), url=url)]])
