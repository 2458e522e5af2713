"""Animations being set up: opened by 🎬 or /animate, completed by a mode and an optional
motion prompt, used once (the step that creates the task claims the draft)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from bot.core.lifecycle import AnimateMode
from storage.database import Database, Row

# "open": waiting for its choices; "used": its task was created (a refused one reopens it).
DraftState = Literal["open", "used"]


@dataclass(frozen=True, slots=True)
class NewDraft:
    chat_id: int
    chat_type: str
    user_id: int
    lang: str
    message_thread_id: int | None = None
    source_task_id: int | None = None
    source_index: int | None = None
    image_url: str | None = None
    prompt: str | None = None
    image_file_id: str | None = None  # the user's own photo, as Telegram keeps it


@dataclass(frozen=True, slots=True)
class Draft:
    id: int
    chat_id: int
    chat_type: str
    user_id: int
    lang: str
    message_thread_id: int | None
    message_id: int | None
    source_task_id: int | None
    source_index: int | None
    image_url: str | None
    mode: str | None
    prompt: str | None
    state: DraftState
    task_id: int | None
    image_file_id: str | None

    @classmethod
    def from_row(cls, row: Row) -> Draft:
        return cls(**{name: row[name] for name in cls.__slots__})


class DraftRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def open(self, new: NewDraft) -> tuple[Draft, bool]:
        """A new draft, or the one this member already has open for the same image
        (pressing 🎬 twice opens one draft); True if it is new."""
        if new.source_task_id is not None:
            row = await self._db.fetch_one(
                "SELECT * FROM drafts WHERE chat_id = ? AND user_id = ? AND source_task_id = ?"
                " AND source_index = ? AND state = 'open'",
                (new.chat_id, new.user_id, new.source_task_id, new.source_index),
            )
            if row is not None:
                return Draft.from_row(row), False
        inserted = await self._db.fetch_one(
            "INSERT INTO drafts (chat_id, chat_type, user_id, lang, message_thread_id,"
            " source_task_id, source_index, image_url, prompt, created_at, image_file_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING id",
            (
                new.chat_id,
                new.chat_type,
                new.user_id,
                new.lang,
                new.message_thread_id,
                new.source_task_id,
                new.source_index,
                new.image_url,
                new.prompt,
                time.time(),
                new.image_file_id,
            ),
        )
        if inserted is None:  # a twin press opened it a moment ago
            return await self.open(new)
        draft = await self.get(inserted[0])
        assert draft is not None
        return draft, True

    async def get(self, draft_id: int) -> Draft | None:
        row = await self._db.fetch_one("SELECT * FROM drafts WHERE id = ?", (draft_id,))
        return Draft.from_row(row) if row else None

    async def find_by_message(self, chat_id: int, message_id: int) -> Draft | None:
        row = await self._db.fetch_one(
            "SELECT * FROM drafts WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )
        return Draft.from_row(row) if row else None

    async def set_message(self, draft_id: int, message_id: int) -> Draft:
        """The message that shows the draft's choices."""
        return await self._set(draft_id, "message_id", message_id)

    async def set_mode(self, draft_id: int, mode: AnimateMode) -> Draft:
        return await self._set(draft_id, "mode", mode)

    async def set_prompt(self, draft_id: int, prompt: str) -> Draft:
        return await self._set(draft_id, "prompt", prompt)

    async def _set(
        self, draft_id: int, column: Literal["message_id", "mode", "prompt"], value: object
    ) -> Draft:
        await self._db.execute(f"UPDATE drafts SET {column} = ? WHERE id = ?", (value, draft_id))
        draft = await self.get(draft_id)
        assert draft is not None
        return draft

    async def claim(self, draft_id: int) -> bool:
        """Mark the draft used; True for exactly one caller."""
        changed = await self._db.execute(
            "UPDATE drafts SET state = 'used' WHERE id = ? AND state = 'open'", (draft_id,)
        )
        return changed == 1

    async def reopen(self, draft_id: int) -> None:
        """The task could not be paid for: the draft may be completed later."""
        await self._db.execute("UPDATE drafts SET state = 'open' WHERE id = ?", (draft_id,))
