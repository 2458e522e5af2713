"""Button data, on its own: every action survives the round trip within Telegram's 64
bytes, and data the bot did not make is nothing."""

from __future__ import annotations

import pytest

from bot.core import callback_data
from bot.core.callback_data import (
    Animate,
    ButtonAction,
    ChangeSetting,
    NoPrompt,
    PickMode,
    Reroll,
    Upscale,
)
from bot.core.constants import MAX_CALLBACK_DATA_BYTES
from bot.core.lifecycle import AnimateMode

BIGGEST_ID = 10**18 - 1  # 18 digits: more tasks than any bot will make


@pytest.mark.parametrize(
    "action",
    [
        Animate(BIGGEST_ID, 9),
        Animate(1, 0),
        Reroll(BIGGEST_ID),
        Upscale(BIGGEST_ID),
        PickMode(BIGGEST_ID, AnimateMode.SPICY),
        PickMode(7, AnimateMode.FUN),
        NoPrompt(BIGGEST_ID),
        ChangeSetting("buttons"),
        ChangeSetting("cap"),
    ],
)
def test_every_action_survives_the_round_trip_within_64_bytes(action: ButtonAction) -> None:
    data = callback_data.encode(action)
    assert len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
    assert callback_data.decode(data) == action


def test_a_picked_mode_is_an_animate_mode() -> None:
    decoded = callback_data.decode(callback_data.encode(PickMode(3, AnimateMode.NORMAL)))
    assert isinstance(decoded, PickMode)
    assert decoded.mode is AnimateMode.NORMAL


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "garbage",
        "r:",
        "r:x",
        "r:1:extra",
        "a:1",
        "a:1:x",
        "a:1:10",
        "m:1:wild",
        "s:unknown",
        "n:",
        "r:" + "9" * 19,
        " r:1",
    ],
)
def test_data_the_bot_did_not_make_is_nothing(data: str | None) -> None:
    assert callback_data.decode(data) is None
