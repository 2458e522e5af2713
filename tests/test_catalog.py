"""The message catalogs: every language complete, shaped like the English, grammatical with
numbers, and safe for HTML; every key the code uses is there, and every message is used."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from bot.telegram.catalog import Lang, keys, language_for, plain, plural_keys, text
from fakes.telegram import FakeTelegram, FakeUser
from fakes.telegram_html import parse_html
from tests.conftest import StartBot, eventually

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "bot" / "telegram" / "locales"


@cache
def catalog_of(lang: Lang) -> Catalog:
    with (LOCALES / lang.locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po)


def forms(lang: Lang, key: str) -> list[str]:
    """The message's text in `lang`, every plural form of it."""
    catalog = catalog_of(lang)
    message = catalog.get((key, key) if key in plural_keys() else key)
    assert message is not None, f"{lang.locale}: {key} is missing"
    assert not message.fuzzy, f"{lang.locale}: {key} is marked fuzzy"
    raw = message.string
    strings = [str(s or "") for s in raw] if isinstance(raw, tuple | list) else [str(raw or "")]
    assert all(strings), f"{lang.locale}: {key} is not translated"
    return strings


def fields(message: str) -> list[str]:
    return sorted(re.findall(r"{(\w+)}", message))


def tags(message: str) -> list[str]:
    return re.findall(r"</?[a-z]+[^>]*>", message)


def test_the_folders_are_the_languages() -> None:
    assert {p.name for p in LOCALES.iterdir() if p.is_dir()} == {lang.locale for lang in Lang}


@pytest.mark.parametrize("lang", list(Lang), ids=lambda lang: lang.locale)
def test_a_language_has_every_message_shaped_like_the_english(lang: Lang) -> None:
    catalog = catalog_of(lang)
    assert str(catalog.locale) == lang.locale
    # The plural rule is the language's own (CLDR's, as Babel has it), and every plural
    # message has as many forms as it says.
    assert catalog.num_plurals == get_plural(lang.locale).num_plurals
    messages = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog if m.id}
    assert messages == keys(), "the same keys as the English catalog"
    for key in sorted(keys()):
        english = forms(Lang.EN, key)[-1]
        translated = forms(lang, key)
        if key in plural_keys():
            assert len(translated) == catalog.num_plurals, key
        for message in translated:
            assert fields(message) == fields(english), f"{lang.locale} {key}: placeholders"
            assert tags(message) == tags(english), f"{lang.locale} {key}: HTML tags"
            params = {name: "7" for name in fields(english)}
            parse_html(text(lang, key, **params))  # valid Telegram HTML


def test_a_plural_message_names_a_number_it_holds() -> None:
    for key, selector in plural_keys().items():
        assert selector in fields(forms(Lang.EN, key)[-1]), key


def code_strings() -> set[str]:
    """Every string literal in the bot's code."""
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_every_key_the_code_names_is_in_the_catalog_and_every_message_is_used() -> None:
    prefixes = {key.split(".")[0] for key in keys()}
    looks_like_a_key = re.compile(r"^[a-z_]+(\.[a-z0-9_]+)+$")
    named = {
        s
        for s in code_strings()
        if s in keys() or (looks_like_a_key.match(s) and s.split(".")[0] in prefixes)
    }
    assert named - keys() == set(), "keys the code uses that no catalog has"
    # A key made at run time (f"mode.{mode}") would be missed here: the code names each.
    assert keys() - named == set(), "messages no code uses"


@pytest.mark.parametrize(
    ("lang", "numbers"),
    [
        (Lang.EN, {1: "1 credit", 2: "2 credits", 5: "5 credits", 21: "21 credits"}),
        (
            Lang.RU,
            {
                1: "1 кредит",
                2: "2 кредита",
                5: "5 кредитов",
                11: "11 кредитов",
                21: "21 кредит",
                24: "24 кредита",
                112: "112 кредитов",
            },
        ),
        (Lang.UK, {1: "1 кредит", 3: "3 кредити", 5: "5 кредитів", 21: "21 кредит"}),
        (Lang.DE, {1: "1 Credit", 6: "6 Credits"}),
        (Lang.ES, {1: "1 crédito", 6: "6 créditos"}),
        (Lang.PT, {0: "0 crédito", 1: "1 crédito", 6: "6 créditos"}),
        (Lang.TR, {1: "1 kredi", 6: "6 kredi"}),
        (Lang.ID, {1: "1 kredit", 6: "6 kredit"}),
    ],
    ids=lambda value: value.locale if isinstance(value, Lang) else "",
)
def test_numbers_take_the_languages_plural_forms(lang: Lang, numbers: dict[int, str]) -> None:
    for n, expected in numbers.items():
        assert plain(lang, "count.credits", n=n) == expected


def test_the_refund_line_is_grammatical_in_russian() -> None:
    """Once "💳 24 кредитов возвращены" (issue 29)."""
    assert text(Lang.RU, "failure.refunded", cost=24) == "💳 24 кредита возвращено."
    assert text(Lang.RU, "failure.refunded", cost=21) == "💳 21 кредит возвращён."
    assert text(Lang.RU, "failure.refunded", cost=6) == "💳 6 кредитов возвращено."
    assert text(Lang.EN, "failure.refunded", cost=1) == "💳 The 1 credit was returned."
    # A fraction takes the form languages give fractions.
    assert plain(Lang.RU, "admin.balance_credits", credits=12.5) == "12.5 кредита"


def test_a_plural_message_without_its_number_is_an_error() -> None:
    with pytest.raises(KeyError, match="cost"):
        text(Lang.RU, "failure.refunded")
    with pytest.raises(KeyError):
        text(Lang.EN, "no.such_key")


def test_parameters_are_escaped() -> None:
    rendered = text(Lang.EN, "failure.generation", what="the images", reason="<b>bad</b> & worse")
    assert "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in rendered
    assert parse_html(rendered).text.startswith("😔 Could not make the images: <b>bad</b> & worse")


@pytest.mark.parametrize(
    ("code", "lang"),
    [
        ("ru", Lang.RU),
        ("ru-RU", Lang.RU),
        ("en", Lang.EN),
        ("de", Lang.DE),
        ("pt-br", Lang.PT),
        ("pt", Lang.PT),
        ("uk", Lang.UK),
        ("id", Lang.ID),
        ("tr", Lang.TR),
        ("es-419", Lang.ES),
        ("zh-hans", Lang.EN),
        ("", Lang.EN),
        (None, Lang.EN),
    ],
)
def test_language_for(code: str | None, lang: Lang) -> None:
    assert language_for(code) is lang


async def test_the_command_menus_and_replies_speak_each_language(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    await start_bot()
    for scope in ("all_private_chats", "all_group_chats"):
        menus = {
            lang.value: telegram.commands[(scope, lang.value)]
            for lang in Lang
            if (scope, lang.value) in telegram.commands
        }
        english = telegram.commands[(scope, "")]
        assert set(menus) | {"en"} == {lang.value for lang in Lang}
        for code, menu in menus.items():
            assert [c["command"] for c in menu] == [c["command"] for c in english], code
            assert [c["description"] for c in menu] != [c["description"] for c in english], code
    # A user whose Telegram speaks German gets the bot's answers in German.
    user = FakeUser(4242, "Hanna", language_code="de-DE")
    chat = telegram.private_chat(user)
    telegram.send_text(chat, user, "/imagine")
    replies = await eventually(lambda: telegram.bot_messages(chat.id))
    assert replies[-1].payload["text"] == parse_html(text(Lang.DE, "error.empty_prompt")).text
