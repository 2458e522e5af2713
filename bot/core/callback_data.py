"""The data behind inline buttons: short, versioned strings well under Telegram's 64 bytes.

Only our own task ids travel in them; everything else is read from the database when
the button is pressed, so an old or forged button can at worst point at a task the bot
then checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from bot.core.constants import MAX_CALLBACK_DATA_BYTES
from bot.core.lifecycle import AnimateMode


@dataclass(frozen=True, slots=True)
class Animate:
    task_id: int
    index: int  # 0-based, as the upstream counts images


@dataclass(frozen=True, slots=True)
class Reroll:
    task_id: int


_ANIMATE = re.compile(r"a:(\d{1,18}):(\d)")
_REROLL = re.compile(r"r:(\d{1,18})")


def encode(action: ButtonAction) -> str:
    match action:
        case Animate(task_id, index):
            data = f"a:{task_id}:{index}"
        case Reroll(task_id):
            data = f"r:{task_id}"
        case ChangeSetting(setting):
            data = f"s:{setting}"
        case Upscale(task_id):
            data = f"u:{task_id}"
        case PickMode(draft_id, mode):
            data = f"m:{draft_id}:{mode}"
        case NoPrompt(draft_id):
            data = f"n:{draft_id}"
        case Buy(credits, stars):
            data = f"b:{credits}:{stars}"
        case HistoryPage(user_id, page):
            data = f"hp:{user_id}:{page}"
        case Resend(task_id):
            data = f"h:{task_id}"
    assert len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
    return data


def decode(data: str | None) -> ButtonAction | None:
    """The action behind `data`, or None for data this bot did not make."""
    if not data:
        return None
    if match := _ANIMATE.fullmatch(data):
        return Animate(int(match[1]), int(match[2]))
    if match := _REROLL.fullmatch(data):
        return Reroll(int(match[1]))
    if match := _SETTING.fullmatch(data):
        return ChangeSetting(cast(Setting, match[1]))
    if match := _UPSCALE.fullmatch(data):
        return Upscale(int(match[1]))
    if match := _PICK_MODE.fullmatch(data):
        return PickMode(int(match[1]), AnimateMode(match[2]))
    if match := _NO_PROMPT.fullmatch(data):
        return NoPrompt(int(match[1]))
    if match := _BUY.fullmatch(data):
        return Buy(int(match[1]), int(match[2]))
    if match := _HISTORY_PAGE.fullmatch(data):
        return HistoryPage(int(match[1]), int(match[2]))
    if match := _RESEND.fullmatch(data):
        return Resend(int(match[1]))
    return None


@dataclass(frozen=True, slots=True)
class Upscale:
    task_id: int


@dataclass(frozen=True, slots=True)
class PickMode:
    """A mode chosen for an animation being set up."""

    draft_id: int
    mode: AnimateMode


@dataclass(frozen=True, slots=True)
class NoPrompt:
    """Animate without a motion prompt."""

    draft_id: int


@dataclass(frozen=True, slots=True)
class Buy:
    """A pack chosen under /buy (checked against the packs on sale when pressed)."""

    credits: int
    stars: int


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """◀ ▶ under /history: the page to show of `user_id`'s results (theirs to turn)."""

    user_id: int
    page: int  # 0-based


@dataclass(frozen=True, slots=True)
class Resend:
    """A result chosen under /history: sent again from Telegram's file ids."""

    task_id: int


@dataclass(frozen=True, slots=True)
class ChangeSetting:
    """A press on the /settings keyboard: which setting to move to its next value."""

    setting: Setting


_SETTING = re.compile(r"s:(buttons|spicy|ratio|cap)")
_UPSCALE = re.compile(r"u:(\d{1,18})")
_PICK_MODE = re.compile(r"m:(\d{1,18}):(fun|normal|spicy)")
_NO_PROMPT = re.compile(r"n:(\d{1,18})")
_BUY = re.compile(r"b:(\d{1,7}):(\d{1,6})")
_HISTORY_PAGE = re.compile(r"hp:(\d{1,18}):(\d{1,4})")
_RESEND = re.compile(r"h:(\d{1,18})")


Setting = Literal["buttons", "spicy", "ratio", "cap"]
ButtonAction = (
    Animate | Reroll | Upscale | PickMode | NoPrompt | ChangeSetting | Buy | HistoryPage | Resend
)


def of(*kinds: type[ButtonAction]) -> Callable[[object], bool]:
    """A handler's pattern: True for button data that stands for one of `kinds` (each
    feature takes the presses on its own buttons)."""

    def matches(data: object) -> bool:
        return isinstance(data, str) and isinstance(decode(data), kinds)

    return matches
