"""The database the repositories talk to: SQLite (`storage.sqlite`, embedded, one process)
or PostgreSQL (`storage.postgres`, any number of replicas), behind one small surface.

Repositories write one SQL for both where they can: `?` (or `:name`) placeholders, which
the PostgreSQL side numbers `$1, $2, …`, and portable functions; where the two differ
(dates, JSON lists) they ask `dialect`. Rows read by column name or by position on both.

Guarantees both give:
- A single statement is atomic; a conditional UPDATE has exactly one winner.
- `transaction(locks=…)` runs its statements as one. Two transactions naming the same
  lock (`chat_lock(id)`, `account_lock(name)`) run one after the other, so a balance read
  and the reservation written after it cannot be interleaved by another process's; those
  naming different ones run side by side on PostgreSQL (SQLite has one writer anyway).
- A unique key broken raises `Conflict`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from storage.migrations import Dialect

Params = Sequence[Any] | dict[str, Any]

__all__ = ["Conflict", "Database", "Dialect", "Leadership", "Params", "Row", "Session"]


def chat_lock(chat_id: int) -> str:
    """The lock of a chat's balance: held while a reservation or a take-back is decided."""
    return f"chat:{chat_id}"


def account_lock(name: str) -> str:
    """The lock of an upstream account's state: held while a task is given one of its
    slots, or its breaker moves."""
    return f"account:{name}"


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


class Conflict(Exception):
    """A unique key said no: the row is there already."""


class Row(Protocol):
    """A row as both drivers give it: by column name or by position."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class Session(Protocol):
    """What a statement runs on: the database itself, or an open transaction."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the rows it changed."""
        ...

    async def fetch_all(self, sql: str, params: Params = ()) -> Sequence[Row]: ...

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...


class Leadership(Protocol):
    """One holder at a time among all the processes on this database (polling Telegram)."""

    async def try_acquire(self) -> bool:
        """True if this process holds it now (already held, or just taken)."""
        ...

    async def release(self) -> None: ...


class Database(ABC):
    """The one handle on storage a process opens (`Database.open`) and closes."""

    dialect: Dialect

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[str], None]]] = {}

    @staticmethod
    async def open(target: Path | str, *, pool_size: int = 10) -> Database:
        """`postgresql://…` (or `postgres://…`) opens PostgreSQL, with up to `pool_size`
        connections; anything else is the path of a SQLite file. Brings the schema up to
        date either way."""
        if isinstance(target, str) and is_postgres_url(target):
            from storage.postgres import PostgresDatabase

            return await PostgresDatabase.connect(target, pool_size=pool_size)
        from storage.sqlite import SQLiteDatabase

        return await SQLiteDatabase.connect(target)

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int: ...

    @abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> Sequence[Row]: ...

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return next(iter(rows), None)

    @abstractmethod
    def transaction(self, *, locks: Iterable[str] = ()) -> AbstractAsyncContextManager[Session]:
        """Statements that commit together, or not at all (an exception rolls back), holding
        `locks` (names) from the start to the end."""

    def ahead_of_the_line(self) -> Database:
        """This database, for statements that go before all that wait without it (see
        `storage/turns.py`: what frees or fills an upstream slot). A database that runs a
        process's statements side by side (PostgreSQL's pool) has no line: itself."""
        return self

    @abstractmethod
    async def ping(self) -> bool:
        """True if this process could write to the database within two seconds."""

    @abstractmethod
    async def schema_version(self) -> int: ...

    # --- between processes ------------------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        """Tell every process on this database (this one too) `payload` on `channel`."""
        for listener in self._listeners.get(channel, ()):
            listener(payload)

    async def listen(self, channel: str, listener: Callable[[str], None]) -> None:
        self._listeners.setdefault(channel, []).append(listener)

    def leadership(self, name: str) -> Leadership:
        """One process at a time holds it. With SQLite, one process is all there is."""
        return _Alone()


class _Alone:
    async def try_acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None
