"""Telegram's limits shared by every process on the database: a message reserves its
moment, in its chat's pace and in the pace of all chats, in one statement.

Each pace is a leaky bucket of `capacity` messages draining at `rate` a second, kept as the
moment it would be empty (`tat`). A message may leave once the bucket has room for it:
at `tat - capacity / rate` or now, whichever is later; it moves `tat` on by `1 / rate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database

EVERY_CHAT = 0


@dataclass(frozen=True, slots=True)
class Bucket:
    capacity: float
    rate: float  # messages a second


class TelegramPace:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def reserve(
        self, chat_id: int | None, chat: Bucket, every: Bucket, *, now: float
    ) -> float:
        """Reserve a message to `chat_id` in both paces (a call that is no message, with
        `chat_id` None: in the pace of all chats only); returns the moment it may leave."""
        # New rows start at now + step; a known pace moves on from max(its tat, now).
        paces = [(EVERY_CHAT, now + 1 / every.rate, 1 / every.rate)]
        if chat_id is not None:
            paces.insert(0, (chat_id, now + 1 / chat.rate, 1 / chat.rate))
        values = ", ".join("(?, ?, ?)" for _ in paces)
        rows = await self._db.fetch_all(
            f"INSERT INTO telegram_pace (key, tat, step) VALUES {values}"
            " ON CONFLICT (key) DO UPDATE SET step = excluded.step, tat = CASE"
            " WHEN telegram_pace.tat + excluded.step > excluded.tat"
            " THEN telegram_pace.tat + excluded.step ELSE excluded.tat END"
            " RETURNING key, tat",
            tuple(value for pace in paces for value in pace),
        )
        moments = [now]
        for row in rows:
            bucket = every if row[0] == EVERY_CHAT else chat
            moments.append(row[1] - bucket.capacity / bucket.rate)
        return max(moments)

    async def hold(self, chat_id: int, chat: Bucket, *, until: float) -> None:
        """Telegram asked the chat to wait: no message reserved for it leaves before `until`
        (then one does, and its pace goes on)."""
        step = 1 / chat.rate
        tat = until - step + chat.capacity / chat.rate
        await self._db.execute(
            "INSERT INTO telegram_pace (key, tat, step) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET step = excluded.step, tat = CASE"
            " WHEN telegram_pace.tat > excluded.tat THEN telegram_pace.tat"
            " ELSE excluded.tat END",
            (chat_id, tat, step),
        )

    async def next_free(
        self, chat_id: int | None, chat: Bucket, every: Bucket, *, now: float
    ) -> float:
        """The moment a message to `chat_id` (None: a call that is no message) reserved now
        would leave, without reserving it (what can wait asks first, and reserves only a
        moment that comes soon)."""
        return max(await self.next_free_each(chat_id, chat, every, now=now))

    async def next_free_each(
        self, chat_id: int | None, chat: Bucket, every: Bucket, *, now: float
    ) -> tuple[float, float]:
        """`next_free` by each pace: (its chat's, all chats'); a call that is no message
        has `now` for its chat's."""
        keys = (EVERY_CHAT,) if chat_id is None else (chat_id, EVERY_CHAT)
        marks = ", ".join("?" for _ in keys)
        rows = await self._db.fetch_all(
            f"SELECT key, tat FROM telegram_pace WHERE key IN ({marks})", keys
        )
        moments = {EVERY_CHAT: now, chat_id: now}
        for row in rows:
            bucket = every if row[0] == EVERY_CHAT else chat
            moment = max(row[1], now) + 1 / bucket.rate - bucket.capacity / bucket.rate
            moments[row[0]] = max(now, moment)
        return moments[chat_id], moments[EVERY_CHAT]

    async def forget(self, *, before: float) -> None:
        """Drop the paces of chats quiet since `before` (their buckets are long empty)."""
        await self._db.execute(
            "DELETE FROM telegram_pace WHERE tat < ? AND key != ?", (before, EVERY_CHAT)
        )
