"""Every user-facing string, in the user's language.

The messages live in gettext catalogs, one per language:
`bot/telegram/locales/<locale>/LC_MESSAGES/messages.po`. Each msgid is a message's key
(`failure.refunded`); English (`en`) is the source text and the fallback for anything a
language lacks. A message that holds a number a noun agrees with has plural forms, as many
as its language has (Russian three, Indonesian one), and names the parameter that chooses
among them in a comment (`#. plural: cost`). Babel reads the catalogs and compiles them, the
first time a message is asked for; the standard library's `gettext` looks messages up and
picks the plural form by the language's own rule (its catalog's `Plural-Forms`).
docs/translations.md says how a translator adds or corrects a language.

Messages are Telegram HTML. `text()` escapes every parameter it substitutes, so user text
(prompts, upstream error messages) can never break the markup or inject tags.
"""

from __future__ import annotations

import gettext
import html
import io
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

_PLURAL_NOTE = "plural:"


class Lang(StrEnum):
    """The languages the bot speaks: the value is Telegram's two-letter language code (as
    `setMyCommands` takes it)."""

    EN = "en"
    RU = "ru"
    ES = "es"
    PT = "pt"  # Brazilian Portuguese
    DE = "de"
    UK = "uk"
    TR = "tr"
    ID = "id"

    @property
    def locale(self) -> str:
        """Its catalog's folder (a locale identifier, as Babel names them)."""
        return "pt_BR" if self is Lang.PT else self.value


def language_for(language_code: str | None) -> Lang:
    """The catalog language for a Telegram user's `language_code` (an IETF tag such as
    `pt-br`); English for a language the bot does not speak."""
    primary = (language_code or "").lower().replace("_", "-").split("-")[0]
    try:
        return Lang(primary)
    except ValueError:
        return Lang.EN


@dataclass(frozen=True, slots=True)
class _Catalogs:
    translations: dict[Lang, gettext.GNUTranslations]
    keys: frozenset[str]
    plural_by: dict[str, str]  # key → the parameter whose number picks the plural form


@cache
def _catalogs() -> _Catalogs:
    folder = resources.files("bot.telegram") / "locales"
    translations: dict[Lang, gettext.GNUTranslations] = {}
    keys: set[str] = set()
    plural_by: dict[str, str] = {}
    for lang in Lang:
        with (folder / lang.locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalog = read_po(po, locale=lang.locale)
        if lang is Lang.EN:
            for message in catalog:
                if not message.id:
                    continue  # the header
                key = message.id[0] if isinstance(message.id, tuple | list) else message.id
                keys.add(key)
                for note in message.auto_comments:
                    if note.startswith(_PLURAL_NOTE):
                        plural_by[key] = note.removeprefix(_PLURAL_NOTE).strip()
        compiled = io.BytesIO()
        write_mo(compiled, catalog)  # untranslated and fuzzy entries are left out
        compiled.seek(0)
        translations[lang] = gettext.GNUTranslations(compiled)
    for lang, translation in translations.items():
        if lang is not Lang.EN:
            translation.add_fallback(translations[Lang.EN])
    return _Catalogs(translations, frozenset(keys), plural_by)


def template(lang: Lang, key: str, params: dict[str, object] | None = None) -> str:
    """The message `key` in `lang` with its `{fields}` unfilled: for a message with plural
    forms, the form for the number in `params` it names."""
    catalogs = _catalogs()
    if key not in catalogs.keys:
        raise KeyError(key)
    translation = catalogs.translations[lang]
    selector = catalogs.plural_by.get(key)
    if selector is None:
        return translation.gettext(key)
    if params is None or selector not in params:
        raise KeyError(f"{key} needs {selector!r}: its number picks the plural form")
    return translation.ngettext(key, key, plural_number(params[selector]))


def plural_number(value: object) -> int:
    """The whole number gettext picks a plural form by. A fraction (a balance of 12.5
    credits) picks the form of 2, which is what languages use for fractions or close to it
    (English "credits", Russian "кредита")."""
    number = float(str(value).replace(",", ""))
    return abs(int(number)) if number.is_integer() else 2


def plain(lang: Lang, key: str, **params: object) -> str:
    """The message `key` in `lang` for a place Telegram shows as plain text (an invoice, a
    button, an inline result's title): parameters go in as they are, not escaped."""
    return template(lang, key, params).format(**params)


class Markup(str):
    """Text that is already Telegram HTML (another catalog message): not escaped again."""


def text(lang: Lang, key: str, **params: object) -> str:
    """The message `key` in `lang`, with every parameter HTML-escaped but `Markup`."""
    escaped = {
        name: value if isinstance(value, Markup) else html.escape(str(value), quote=False)
        for name, value in params.items()
    }
    return template(lang, key, params).format(**escaped)


def escape(plain: str) -> str:
    """Plain text (an operator's own /terms, say) made safe to send as HTML."""
    return html.escape(plain, quote=False)


def keys() -> frozenset[str]:
    """Every message's key (the English catalog's)."""
    return _catalogs().keys


def plural_keys() -> dict[str, str]:
    """The messages with plural forms, and the parameter that picks the form of each."""
    return dict(_catalogs().plural_by)
