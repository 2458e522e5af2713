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


_FAILED = "CAST(SUM(CASE WHEN state IN ('failed', 'reported') THEN 1 ELSE 0 END) AS BIGINT)"


class StatsRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def _day(self) -> str:
        """The UTC day (YYYY-MM-DD) a task was asked for, in this database's words."""
        if self._db.dialect == "postgresql":
            return "to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return "date(created_at, 'unixepoch')"

    async def per_day(self, since_day: str) -> list[DayStats]:
        day = self._day()
        rows = await self._db.fetch_all(
            f"""
            SELECT {day} AS day,
                   COUNT(*),
                   {_FAILED},
                   CAST(COALESCE(SUM(CASE WHEN state = 'delivered' THEN cost END), 0) AS BIGINT)
            FROM tasks WHERE {day} >= ?
            GROUP BY 1 ORDER BY 1
            """,
            (since_day,),
        )
        return [DayStats(*row) for row in rows]

    async def top_chats(self, since_day: str, limit: int = 5) -> list[ChatStats]:
        rows = await self._db.fetch_all(
            f"""
            SELECT chat_id, COUNT(*) AS tasks,
                   CAST(COALESCE(SUM(CASE WHEN state = 'delivered' THEN cost END), 0)
                        AS BIGINT) AS credits
            FROM tasks WHERE {self._day()} >= ?
            GROUP BY chat_id ORDER BY credits DESC, tasks DESC LIMIT ?
            """,
            (since_day, limit),
        )
        return [ChatStats(*row) for row in rows]

    async def per_account(self, since_day: str) -> list[AccountStats]:
        """Tasks sent to each upstream account (those still waiting for one left out)."""
        rows = await self._db.fetch_all(
            f"""
            SELECT account, COUNT(*), {_FAILED}
            FROM tasks WHERE {self._day()} >= ? AND account != ''
            GROUP BY account ORDER BY COUNT(*) DESC, account
            """,
            (since_day,),
        )
        return [AccountStats(*row) for row in rows]
