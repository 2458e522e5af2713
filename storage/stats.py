"""Figures for operators: tasks and credits per UTC day, and the busiest chats."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class DayStats:
    day: str
    tasks: int
    failed: int
    credits: int  # committed: spent on delivered results


@dataclass(frozen=True, slots=True)
class AccountStats:
    account: str
    tasks: int
    failed: int


@dataclass(frozen=True, slots=True)
class ChatStats:
    chat_id: int
    tasks: int
    credits: int


class StatsRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def per_day(self, since_day: str) -> list[DayStats]:
        rows = await self._db.fetch_all(
            """
            SELECT date(created_at, 'unixepoch') AS day,
                   COUNT(*),
                   SUM(state IN ('failed', 'reported')),
                   COALESCE(SUM(CASE WHEN state = 'delivered' THEN cost END), 0)
            FROM tasks WHERE date(created_at, 'unixepoch') >= ?
            GROUP BY day ORDER BY day
            """,
            (since_day,),
        )
        return [DayStats(*row) for row in rows]

    async def top_chats(self, since_day: str, limit: int = 5) -> list[ChatStats]:
        rows = await self._db.fetch_all(
            """
            SELECT chat_id, COUNT(*) AS tasks,
                   COALESCE(SUM(CASE WHEN state = 'delivered' THEN cost END), 0) AS credits
            FROM tasks WHERE date(created_at, 'unixepoch') >= ?
            GROUP BY chat_id ORDER BY credits DESC, tasks DESC LIMIT ?
            """,
            (since_day, limit),
        )
        return [ChatStats(*row) for row in rows]

    async def per_account(self, since_day: str) -> list[AccountStats]:
        """Tasks sent to each upstream account (those still waiting for one left out)."""
        rows = await self._db.fetch_all(
            """
            SELECT account, COUNT(*), SUM(state IN ('failed', 'reported'))
            FROM tasks WHERE date(created_at, 'unixepoch') >= ? AND account != ''
            GROUP BY account ORDER BY COUNT(*) DESC, account
            """,
            (since_day,),
        )
        return [AccountStats(*row) for row in rows]
