"""The message catalog: complete in both languages, and safe for HTML."""

from __future__ import annotations

import re

import pytest

from bot.core.catalog import Lang, keys, language_for, template, text
from fakes.telegram_html import parse_html


@pytest.mark.parametrize("key", sorted(keys()))
def test_every_message_exists_in_both_languages_with_the_same_fields(key: str) -> None:
    fields = {lang: set(re.findall(r"{(\w+)}", template(lang, key))) for lang in Lang}
    assert fields[Lang.EN] == fields[Lang.RU]
    params = {name: "x" for name in fields[Lang.EN]}
    for lang in Lang:
        parse_html(text(lang, key, **params))  # valid Telegram HTML


def test_parameters_are_escaped() -> None:
    rendered = text(Lang.EN, "failure.generation", what="the images", reason="<b>bad</b> & worse")
    assert "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in rendered
    assert parse_html(rendered).text.startswith("😔 Could not make the images: <b>bad</b> & worse")


@pytest.mark.parametrize(
    ("code", "lang"),
    [("ru", Lang.RU), ("ru-RU", Lang.RU), ("en", Lang.EN), ("de", Lang.EN), (None, Lang.EN)],
)
def test_language_for(code: str | None, lang: Lang) -> None:
    assert language_for(code) is lang
