"""Every user-facing string, in English and Russian.

Messages are Telegram HTML. `text()` escapes every parameter it substitutes, so user
text (prompts, upstream error messages) can never break the markup or inject tags.
"""

from __future__ import annotations

import html
from enum import StrEnum
from typing import Final


class Lang(StrEnum):
    EN = "en"
    RU = "ru"


def language_for(language_code: str | None) -> Lang:
    """The catalog language for a Telegram user's `language_code` (IETF tag)."""
    if language_code and language_code.lower().split("-")[0] == "ru":
        return Lang.RU
    return Lang.EN


_MESSAGES: Final[dict[str, dict[Lang, str]]] = {
    "help": {
        Lang.EN: (
            "<b>Grok Imagine in Telegram</b>\n\n"
            "/imagine <i>prompt</i> makes six images from your words.\n"
            "Add <code>--ar</code> to pick the shape: "
            "<code>1:1</code> (default), <code>2:3</code>, <code>3:2</code>, "
            "<code>16:9</code>, <code>9:16</code>.\n\n"
            "Examples:\n"
            "<code>/imagine a red fox in snow --ar 3:2</code>\n"
            "<code>/imagine neon city at night, rain, cinematic --ar 9:16</code>\n\n"
            "Under the images, 🔁 makes a new set from the same prompt."
        ),
        Lang.RU: (
            "<b>Grok Imagine в Telegram</b>\n\n"
            "/imagine <i>описание</i> — шесть картинок по вашему описанию.\n"
            "Формат задаётся через <code>--ar</code>: "
            "<code>1:1</code> (по умолчанию), <code>2:3</code>, <code>3:2</code>, "
            "<code>16:9</code>, <code>9:16</code>.\n\n"
            "Примеры:\n"
            "<code>/imagine рыжая лиса в снегу --ar 3:2</code>\n"
            "<code>/imagine неоновый город ночью, дождь, кино --ar 9:16</code>\n\n"
            "Под картинками кнопка 🔁 делает новый набор по тому же описанию."
        ),
    },
    "command.imagine": {
        Lang.EN: "Make images from a prompt",
        Lang.RU: "Картинки по описанию",
    },
    "command.help": {
        Lang.EN: "How to use the bot",
        Lang.RU: "Как пользоваться ботом",
    },
    "error.empty_prompt": {
        Lang.EN: (
            "Tell me what to draw after the command, for example:\n"
            "<code>/imagine a red fox in snow --ar 3:2</code>"
        ),
        Lang.RU: (
            "Напишите после команды, что нарисовать, например:\n"
            "<code>/imagine рыжая лиса в снегу --ar 3:2</code>"
        ),
    },
    "error.prompt_too_long": {
        Lang.EN: "The prompt is {length} characters long; the limit is {limit}. Please shorten it.",
        Lang.RU: "В описании {length} символов, а можно не больше {limit}. Сократите его.",
    },
    "error.bad_ratio": {
        Lang.EN: "Unknown aspect ratio <code>{value}</code>. Use one of: {allowed}.",
        Lang.RU: "Неизвестный формат <code>{value}</code>. Доступны: {allowed}.",
    },
    "error.missing_ratio": {
        Lang.EN: "<code>--ar</code> needs a value, for example <code>--ar 3:2</code>. "
        "Use one of: {allowed}.",
        Lang.RU: "После <code>--ar</code> укажите формат, например <code>--ar 3:2</code>. "
        "Доступны: {allowed}.",
    },
    "error.repeated_ratio": {
        Lang.EN: "Give <code>--ar</code> only once.",
        Lang.RU: "Укажите <code>--ar</code> только один раз.",
    },
    "status.queued": {
        Lang.EN: "⏳ Generating… queued, {elapsed} s",
        Lang.RU: "⏳ Генерирую… в очереди, {elapsed} с",
    },
    "status.working": {
        Lang.EN: "🎨 Generating… working, {elapsed} s",
        Lang.RU: "🎨 Генерирую… рисую, {elapsed} с",
    },
    "status.sending": {
        Lang.EN: "📤 Sending the images…",
        Lang.RU: "📤 Отправляю картинки…",
    },
    "result.caption": {
        Lang.EN: "{prompt}",
        Lang.RU: "{prompt}",
    },
    "result.buttons": {
        Lang.EN: "🎬 animates an image, 🔁 makes a new set. Aspect ratio {ratio}.",
        Lang.RU: "🎬 оживляет картинку, 🔁 делает новый набор. Формат {ratio}.",
    },
    "failure.generation": {
        Lang.EN: "😔 The images could not be generated: {reason}\nTry again or change the prompt.",
        Lang.RU: "😔 Не удалось создать картинки: {reason}\n"
        "Попробуйте ещё раз или измените описание.",
    },
    "failure.generation_no_reason": {
        Lang.EN: "😔 The images could not be generated. Try again or change the prompt.",
        Lang.RU: "😔 Не удалось создать картинки. Попробуйте ещё раз или измените описание.",
    },
    "failure.rejected": {
        Lang.EN: "🚫 The image service refused this request: {reason}",
        Lang.RU: "🚫 Сервис отклонил запрос: {reason}",
    },
    "failure.timeout": {
        Lang.EN: "⌛ The image service took too long and the request was dropped. "
        "Please try again.",
        Lang.RU: "⌛ Сервис не успел ответить, запрос отменён. Попробуйте ещё раз.",
    },
    "failure.unavailable": {
        Lang.EN: "🛠 The image service is temporarily unavailable. Please try again later.",
        Lang.RU: "🛠 Сервис временно недоступен. Попробуйте позже.",
    },
    "failure.delivery": {
        Lang.EN: "😔 The images were made but could not be sent here. Please try again.",
        Lang.RU: "😔 Картинки готовы, но отправить их сюда не получилось. Попробуйте ещё раз.",
    },
    "failure.interrupted": {
        Lang.EN: "😔 The bot restarted while this request was being sent, so it was dropped. "
        "Please try again.",
        Lang.RU: "😔 Бот перезапустился во время отправки запроса, и он не выполнен. "
        "Попробуйте ещё раз.",
    },
    "button.unknown": {
        Lang.EN: "This button is no longer valid.",
        Lang.RU: "Эта кнопка больше не работает.",
    },
    "button.animate_soon": {
        Lang.EN: "Animation is coming soon.",
        Lang.RU: "Оживление картинок скоро появится.",
    },
    "button.reroll_started": {
        Lang.EN: "🔁 Making a new set…",
        Lang.RU: "🔁 Делаю новый набор…",
    },
}


def template(lang: Lang, key: str) -> str:
    """The message `key` in `lang` with its `{fields}` unfilled."""
    return _MESSAGES[key][lang]


def text(lang: Lang, key: str, **params: object) -> str:
    """The message `key` in `lang`, with every parameter HTML-escaped."""
    escaped = {name: html.escape(str(value), quote=False) for name, value in params.items()}
    return template(lang, key).format(**escaped)


def keys() -> frozenset[str]:
    return frozenset(_MESSAGES)
