"""SQLite: the embedded database, one process, one file (aiosqlite).

aiosqlite runs a connection on its own thread; statements from many coroutines would
interleave inside each other's transactions. So every statement takes the connection's
lock, and `transaction()` holds it from BEGIN to COMMIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import sqlite3
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random

from storage.database import Conflict, Database, Params, Row, Session
from storage.migrations import all_migrations
from storage.turns import TurnLock

_log = logging.getLogger(__name__)


class _Transaction:
    """The statements of one open transaction (the lock is held by `transaction()`)."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, params: Params = ()) -> int:
        with _conflicts():
            cursor = await self._connection.execute(sql, params)
        return cursor.rowcount

    async def fetch_all(self, sql: str, params: Params = ()) -> Sequence[Row]:
        with _conflicts():
            return list(await self._connection.execute_fetchall(sql, params))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return next(iter(await self.fetch_all(sql, params)), None)


class SQLiteDatabase(Database):
    dialect = "sqlite"
    _ahead = False  # this view's statements go before the rest (`ahead_of_the_line`)

    def __init__(self, connection: aiosqlite.Connection, path: Path | str) -> None:
        super().__init__()
        self._connection = connection
        self._path = str(path)
        self._lock = TurnLock()
        self._session = _Transaction(connection)

    @classmethod
    async def connect(cls, path: Path | str) -> SQLiteDatabase:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            connection.row_factory = aiosqlite.Row
            await connection.execute("PRAGMA busy_timeout = 5000")
            # Two processes opening a new file at once both switch it to WAL; the loser is
            # told "locked" at once (SQLite's busy wait does not cover that switch).
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_locked),
                wait=wait_random(0.01, 0.1),
                stop=stop_after_delay(5),
                reraise=True,
            ):
                with attempt:
                    await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA synchronous = NORMAL")
            await connection.execute("PRAGMA foreign_keys = ON")
            database = cls(connection, path)
            await database._migrate()
        except BaseException:
            await connection.close()  # its thread would keep the process alive
            raise
        return database

    def ahead_of_the_line(self) -> SQLiteDatabase:
        """The same connection and line, its statements served before those not ahead."""
        view = copy.copy(self)
        view._ahead = True
        return view

    async def close(self) -> None:
        async with self._lock.turn(ahead=self._ahead):
            await self._connection.close()

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._lock.turn(ahead=self._ahead):
            return await self._session.execute(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> Sequence[Row]:
        # One trip to the connection's thread (execute, then fetch, would be two).
        async with self._lock.turn(ahead=self._ahead):
            return await self._session.fetch_all(sql, params)

    @asynccontextmanager
    async def transaction(self, *, locks: Iterable[str] = ()) -> AsyncIterator[Session]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on an exception, holding the lock (one
        writer at a time: whatever `locks` names is locked with the rest)."""
        async with self._lock.turn(ahead=self._ahead):
            begin = asyncio.ensure_future(self._connection.execute("BEGIN IMMEDIATE"))
            try:
                await asyncio.shield(begin)
            except asyncio.CancelledError:
                # The BEGIN runs on in aiosqlite's thread: let it finish, then undo it, so
                # the connection is never left inside a transaction nobody owns.
                await _to_the_end(self._undo(begin))
                raise
            try:
                yield self._session
            except BaseException:
                await _to_the_end(self._rollback())
                raise
            await self._connection.execute("COMMIT")

    async def _undo(self, begin: asyncio.Future[Any]) -> None:
        with contextlib.suppress(Exception):
            await begin
            await self._connection.execute("ROLLBACK")

    async def _rollback(self) -> None:
        with contextlib.suppress(Exception):
            await self._connection.execute("ROLLBACK")

    async def ping(self) -> bool:
        """True if the bot could write within two seconds: a write lock taken and let go
        (reads alone would pass while another writer holds the database). On a connection
        of its own, so a stuck check never leaves the bot's connection mid-transaction."""

        def check() -> bool:
            try:
                probe = sqlite3.connect(self._path, timeout=2.0, isolation_level=None)
                try:
                    probe.execute("BEGIN IMMEDIATE")
                    probe.execute("ROLLBACK")
                finally:
                    probe.close()
            except sqlite3.Error:
                return False
            return True

        return await asyncio.to_thread(check)

    async def schema_version(self) -> int:
        row = await self.fetch_one("PRAGMA user_version")
        assert row is not None
        return int(row[0])

    async def _migrate(self) -> None:
        """Each pending migration in a transaction of its own, with the version it brings:
        the schema change and the version move together or not at all. The version is read
        inside the transaction, so of two processes opening the file at once, one applies
        it and the other finds it applied."""
        for migration in all_migrations("sqlite"):
            async with self.transaction() as session:
                current = await session.fetch_one("PRAGMA user_version")
                if current is not None and int(current[0]) >= migration.version:
                    continue
                _log.info("applying migration %04d_%s", migration.version, migration.name)
                for statement in _statements(migration.sql):
                    await session.execute(statement)
                await session.execute(f"PRAGMA user_version = {migration.version}")


def _locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def _statements(script: str) -> list[str]:
    """A script's statements, one by one (`executescript` would commit first)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"an unfinished statement ends the migration: {buffer[:80]!r}")
    return statements


@contextlib.contextmanager
def _conflicts() -> Any:
    try:
        yield
    except sqlite3.IntegrityError as error:
        if "UNIQUE" in str(error) or "PRIMARY KEY" in str(error):
            raise Conflict(str(error)) from error
        raise


async def _to_the_end(cleanup: Coroutine[Any, Any, None]) -> None:
    """Run `cleanup` to its end, holding the caller (and so the connection's lock) until
    then, however many cancellations arrive meanwhile (a stopping engine cancels workers
    again, and a ROLLBACK cut short would leave later statements inside the transaction).
    The caller re-raises its own cancellation afterwards."""
    task = asyncio.ensure_future(cleanup)
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
