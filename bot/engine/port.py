"""The engine's one way to Telegram: these Bot API calls (and the `Deliverer` for
results). PTB's `Bot` is one; a test, or another transport, can hold any other object with
these methods. Only `status.py` and `results.py` use it."""

from __future__ import annotations

from typing import Any, Protocol

from telegram import InlineKeyboardMarkup, InputMedia, Message, ReplyParameters


class TelegramPort(Protocol):
    async def send_message(
        self,
        chat_id: int,
        text: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        message_thread_id: int | None = None,
        reply_parameters: ReplyParameters | None = None,
    ) -> Message: ...

    @property
    def username(self) -> str: ...

    async def edit_message_text(
        self,
        text: str,
        chat_id: int | None = None,
        message_id: int | None = None,
        inline_message_id: str | None = None,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
    ) -> Message | bool: ...

    async def edit_message_media(
        self,
        media: InputMedia,
        chat_id: int | None = None,
        message_id: int | None = None,
        inline_message_id: str | None = None,
        reply_markup: InlineKeyboardMarkup | None = None,
    ) -> Message | bool: ...

    async def delete_message(self, chat_id: int, message_id: int) -> bool: ...

    async def send_chat_action(
        self, chat_id: int, action: Any, *, message_thread_id: int | None = None
    ) -> bool: ...
