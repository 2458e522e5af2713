"""Per-chat settings, and moving a chat's data when a group becomes a supergroup."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Literal

from storage.database import Database, chat_lock

_ADMINS_CHANGED = "imagine_bot_admins_changed"

# Who may press a result's buttons: the requester (and the chat's admins), or everyone.
ButtonsFor = Literal["requester", "everyone"]


@dataclass(frozen=True, slots=True)
class ChatSettings:
    chat_id: int
    daily_credits: int | None = None  # None: the bot-wide CHAT_DAILY_CREDITS
    user_daily_cap: int | None = None  # None: GROUP_USER_DAILY_CREDITS; 0: no cap
    buttons_for: ButtonsFor = "requester"
    allow_spicy: bool = False
    default_ratio: str | None = None


_COLUMNS = [f.name for f in fields(ChatSettings)]


class ChatRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, chat_id: int) -> ChatSettings:
        row = await self._db.fetch_one(
            f"SELECT {', '.join(_COLUMNS)} FROM chat_settings WHERE chat_id = ?", (chat_id,)
        )
        if row is None:
            return ChatSettings(chat_id)
        values = dict(zip(_COLUMNS, row, strict=True))
        values["allow_spicy"] = bool(values["allow_spicy"])
        return ChatSettings(**values)

    async def save(self, settings: ChatSettings) -> ChatSettings:
        """Store every setting of the chat (last write wins)."""
        changes = {name: getattr(settings, name) for name in _COLUMNS[1:]}
        return await self._upsert(settings.chat_id, changes)

    async def set_daily_credits(self, chat_id: int, daily: int | None) -> ChatSettings:
        """An operator's /setquota: only this setting changes."""
        return await self._upsert(chat_id, {"daily_credits": daily})

    async def _upsert(self, chat_id: int, changes: dict[str, object]) -> ChatSettings:
        names = ", ".join(changes)
        marks = ", ".join("?" for _ in changes)
        updates = ", ".join(f"{name} = excluded.{name}" for name in changes)
        await self._db.execute(
            f"INSERT INTO chat_settings (chat_id, {names}, updated_at) VALUES (?, {marks}, ?)"
            f" ON CONFLICT (chat_id) DO UPDATE SET {updates}, updated_at = excluded.updated_at",
            (chat_id, *changes.values(), time.time()),
        )
        return await self.get(chat_id)

    async def migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: its tasks, credits and settings follow it."""
        locks = [chat_lock(old_chat_id), chat_lock(new_chat_id)]
        async with self._db.transaction(locks=locks) as connection:
            await connection.execute(
                "UPDATE tasks SET chat_id = ?, chat_type = 'supergroup' WHERE chat_id = ?",
                (new_chat_id, old_chat_id),
            )
            await connection.execute(
                "UPDATE ledger SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
            )
            await connection.execute(
                "UPDATE payments SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
            )
            await connection.execute(
                "UPDATE chat_settings SET chat_id = ? WHERE chat_id = ?"
                " AND NOT EXISTS (SELECT 1 FROM chat_settings WHERE chat_id = ?)",
                (new_chat_id, old_chat_id, new_chat_id),
            )

    # --- between processes: "this chat's administrators changed" ----------------------------

    async def admins_changed(self, chat_id: int) -> None:
        """Tell every process on this database that the chat's administrators changed."""
        await self._db.notify(_ADMINS_CHANGED, str(chat_id))

    async def on_admins_changed(self, listener: Callable[[int], None]) -> None:
        await self._db.listen(_ADMINS_CHANGED, lambda payload: listener(int(payload)))
