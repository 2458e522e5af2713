"""The /imagine argument parser (pure core)."""

from __future__ import annotations

import pytest

from bot.core.parsing import ImagineRequest, ParseError, parse_imagine


@pytest.mark.parametrize(
    ("text", "prompt", "ratio"),
    [
        (" a red fox in snow --ar 3:2", "a red fox in snow", "3:2"),
        (" --ar 9:16 a tall tower", "a tall tower", "9:16"),
        (" a fox --ar 16:9 in snow", "a fox in snow", "16:9"),
        (" a fox --ar=2:3", "a fox", "2:3"),
        (" a fox —ar 3:2", "a fox", "3:2"),  # a phone turned -- into an em dash
        (" a fox", "a fox", "1:1"),
        (" line one\nline two --ar 1:1", "line one\nline two", "1:1"),
        (' <b>&amp; "quotes" *md* --art deco', '<b>&amp; "quotes" *md* --art deco', "1:1"),
        (" price--ar 3:2 stays", "price--ar 3:2 stays", "1:1"),
    ],
)
def test_prompt_and_ratio(text: str, prompt: str, ratio: str) -> None:
    assert parse_imagine(text) == ImagineRequest(prompt, ratio)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("", "error.empty_prompt"),
        ("   \n ", "error.empty_prompt"),
        (" --ar 3:2", "error.empty_prompt"),
        (" a fox --ar 4:3", "error.bad_ratio"),
        (" a fox --ar", "error.missing_ratio"),
        (" a fox --ar\nmore", "error.missing_ratio"),
        (" a --ar 1:1 b --ar 3:2", "error.repeated_ratio"),
        (" " + "y" * 5001, "error.prompt_too_long"),
    ],
)
def test_refusals(text: str, key: str) -> None:
    result = parse_imagine(text)
    assert isinstance(result, ParseError)
    assert result.key == key


def test_prompt_of_exactly_the_limit_is_accepted() -> None:
    assert parse_imagine("z" * 5000) == ImagineRequest("z" * 5000, "1:1")
