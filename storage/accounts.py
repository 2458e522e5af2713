"""What every process shares of each upstream account (`bot.core.breaker.AccountState`),
one row an account, moved under the account's lock: of two processes moving it at once,
the second sees the first's move. A move's answer (did an outage begin?) is therefore
given to exactly one of them.

Each process keeps a copy for routing; `on_change` tells it (every process on PostgreSQL)
that a row moved, so it reads it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import TypeVar

from bot.core.breaker import AccountState
from storage.database import Database, Session, account_lock

T = TypeVar("T")

_CHANGES = "imagine_bot_account_changed"  # the channel of `on_change`
_COLUMNS = tuple(f.name for f in fields(AccountState))


async def read(session: Session, name: str) -> AccountState:
    """The account's state (a fresh one if it never moved)."""
    row = await session.fetch_one(
        f"SELECT {', '.join(_COLUMNS)} FROM account_states WHERE name = ?", (name,)
    )
    return AccountState(**{column: row[column] for column in _COLUMNS}) if row else AccountState()


async def write(session: Session, name: str, state: AccountState) -> None:
    values = [getattr(state, column) for column in _COLUMNS]
    marks = ", ".join("?" for _ in _COLUMNS)
    updates = ", ".join(f"{column} = excluded.{column}" for column in _COLUMNS)
    await session.execute(
        f"INSERT INTO account_states (name, {', '.join(_COLUMNS)}) VALUES (?, {marks})"
        f" ON CONFLICT (name) DO UPDATE SET {updates}",
        (name, *values),
    )


class AccountStates:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def all(self) -> dict[str, AccountState]:
        rows = await self._db.fetch_all(f"SELECT name, {', '.join(_COLUMNS)} FROM account_states")
        return {
            row["name"]: AccountState(**{column: row[column] for column in _COLUMNS})
            for row in rows
        }

    async def get(self, name: str) -> AccountState:
        return await read(self._db, name)

    async def move(
        self, name: str, decide: Callable[[AccountState], tuple[AccountState, T]]
    ) -> tuple[AccountState, T]:
        """Read the account's state, `decide` its next one (a pure function: it may run
        again), write it: one step, under the account's lock. The state as left, and what
        `decide` answered."""
        async with self._db.transaction(locks=[account_lock(name)]) as session:
            before = await read(session, name)
            after, answer = decide(before)
            if after != before:
                await write(session, name, after)
        if after != before:
            await self.changed(name)
        return after, answer

    async def changed(self, name: str) -> None:
        """Tell every process that the account's state moved."""
        await self._db.notify(_CHANGES, name)

    async def on_change(self, listener: Callable[[str], None]) -> None:
        await self._db.listen(_CHANGES, listener)
