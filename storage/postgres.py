"""PostgreSQL: the database several replicas share (asyncpg).

asyncpg over psycopg 3: its records read by column name and by position as aiosqlite's
rows do (one set of repositories for both), it has a pool, LISTEN/NOTIFY and a binary
protocol of its own, and it needs no libpq on the machine.

- Statements use `?` / `:name` placeholders like SQLite's; they are numbered `$1, $2, …`
  here (quoted text is left alone), once per distinct statement.
- A transaction takes the advisory locks of what it reads to decide (`locks`: a chat's
  balance, an account's slots) first, in one order, so two that decide on the same thing
  run one after the other across all replicas, and the rest run side by side: no
  transaction waits for one on another chat or account.
- Migrations run under an advisory lock of their own, so replicas starting together apply
  each one once.
- `notify` is NOTIFY; `listen` keeps a connection of its own LISTENing (re-connected if
  it drops). `leadership` is a session advisory lock on a connection of its own: the
  holder dies, its connection closes, and the lock is free for another.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from storage.database import Conflict, Database, Params, Row, Session
from storage.migrations import all_migrations

_log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\?|(?<![:\w]):([A-Za-z_]\w*)")


def lock_key(name: str) -> int:
    """A stable 64-bit advisory lock key for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


_MIGRATE_KEY = lock_key("imagine-bot:migrations")


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> tuple[str, tuple[str | int, ...]]:
    """SQLite-style placeholders as PostgreSQL's: the statement, and what each `$n` takes
    (a position in a sequence of parameters, or a name in a mapping)."""
    parts = sql.split("'")  # odd parts are inside quotes
    order: list[str | int] = []
    numbers: dict[str, int] = {}
    position = 0

    def number(match: re.Match[str]) -> str:
        nonlocal position
        name = match.group(1)
        if name is None:
            order.append(position)
            position += 1
            return f"${len(order)}"
        if name not in numbers:
            order.append(name)
            numbers[name] = len(order)
        return f"${numbers[name]}"

    for index in range(0, len(parts), 2):
        parts[index] = _PLACEHOLDER.sub(number, parts[index])
    return "'".join(parts), tuple(order)


def _arguments(order: tuple[str | int, ...], params: Params) -> list[Any]:
    return [params[key] for key in order]  # type: ignore[index]


def _changed(status: str) -> int:
    """The rows a command changed, from its status ("UPDATE 3", "INSERT 0 1")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _Connection:
    """Statements on one connection (a transaction's, or one taken from the pool)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def execute(self, sql: str, params: Params = ()) -> int:
        statement, order = translate(sql)
        with _conflicts():
            return _changed(await self._connection.execute(statement, *_arguments(order, params)))

    async def fetch_all(self, sql: str, params: Params = ()) -> Sequence[Row]:
        statement, order = translate(sql)
        with _conflicts():
            rows: list[Row] = await self._connection.fetch(statement, *_arguments(order, params))
        return rows

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return next(iter(await self.fetch_all(sql, params)), None)


def session_of(connection: Any) -> Session:
    """Statements, `?`-style, on one of asyncpg's own connections (its open transaction)."""
    return _Connection(connection)


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        super().__init__()
        self._pool = pool
        self._url = url
        self._listening: asyncpg.Connection | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._leaderships: list[_AdvisoryLeadership] = []
        self._listen_lock = asyncio.Lock()
        self._closing = False

    @classmethod
    async def connect(cls, url: str, *, pool_size: int = 10) -> PostgresDatabase:
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=pool_size, command_timeout=30, server_settings=_SESSION
        )
        database = cls(pool, url)
        try:
            await database._migrate()
        except BaseException:
            await pool.close()
            raise
        return database

    async def close(self) -> None:
        self._closing = True
        if self._relisten is not None:
            self._relisten.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisten
        for leadership in self._leaderships:
            await leadership.release()
        if self._listening is not None:
            with contextlib.suppress(Exception):
                await self._listening.close()
        await self._pool.close()

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._pool.acquire() as connection:
            return await _Connection(connection).execute(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> Sequence[Row]:
        async with self._pool.acquire() as connection:
            return await _Connection(connection).fetch_all(sql, params)

    @asynccontextmanager
    async def transaction(self, *, locks: Iterable[str] = ()) -> AsyncIterator[Session]:
        keys = sorted({lock_key(f"imagine-bot:{name}") for name in locks})
        async with self._pool.acquire() as connection, connection.transaction():
            for key in keys:  # in one order: two wanting the same two never deadlock
                await connection.execute("SELECT pg_advisory_xact_lock($1)", key)
            yield _Connection(connection)

    def connection(self) -> Any:
        """One of the pool's connections, as asyncpg's own (`async with`): for what only
        PostgreSQL does (COPY, in `storage.copy_to_postgres`)."""
        return self._pool.acquire()

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(2.0), self._pool.acquire() as connection:
                return bool(await connection.fetchval("SELECT NOT pg_is_in_recovery()"))
        except (Exception, TimeoutError):
            return False

    async def schema_version(self) -> int:
        async with self._pool.acquire() as connection:
            return await _version(connection)

    async def _migrate(self) -> None:
        async with self._pool.acquire() as connection:
            await connection.execute("SET lock_timeout = 0")
            await connection.execute(
                "SELECT pg_advisory_lock($1)", _MIGRATE_KEY, timeout=_MIGRATION_TIME
            )
            try:
                await connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
                )
                current = await _version(connection)
                for migration in all_migrations("postgresql"):
                    if migration.version <= current:
                        continue
                    _log.info("applying migration %04d_%s", migration.version, migration.name)
                    async with connection.transaction():
                        await connection.execute(migration.sql, timeout=_MIGRATION_TIME)
                        await connection.execute("DELETE FROM schema_version")
                        await connection.execute(
                            "INSERT INTO schema_version (version) VALUES ($1)", migration.version
                        )
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATE_KEY)
                await connection.execute("RESET lock_timeout")

    # --- between processes ------------------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        await self.execute("SELECT pg_notify(?, ?)", (channel, payload))

    async def listen(self, channel: str, listener: Callable[[str], None]) -> None:
        await super().listen(channel, listener)
        async with self._listen_lock:
            if self._listening is None:
                await self._connect_listener()
            elif len(self._listeners[channel]) == 1:
                await self._listening.add_listener(channel, self._heard)

    def leadership(self, name: str) -> _AdvisoryLeadership:
        leadership = _AdvisoryLeadership(self._url, lock_key(f"imagine-bot:lead:{name}"))
        self._leaderships.append(leadership)
        return leadership

    def _heard(self, connection: Any, pid: int, channel: str, payload: object) -> None:
        for listener in self._listeners.get(channel, ()):
            listener(str(payload))

    async def _connect_listener(self) -> None:
        """One LISTEN connection (the caller holds `_listen_lock`)."""
        connection = await asyncpg.connect(self._url, server_settings=_SESSION)
        try:
            for channel in self._listeners:
                await connection.add_listener(channel, self._heard)
        except BaseException:
            await connection.close()
            raise
        connection.add_termination_listener(self._lost_listener)
        self._listening = connection

    def _lost_listener(self, connection: Any) -> None:
        if self._closing:
            return
        _log.warning("the LISTEN connection closed; connecting again")
        self._listening = None
        self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        """Until connected again (a nudge sent meanwhile is missed; the poll net finds
        the result a little later)."""
        while not self._closing:
            async with self._listen_lock:
                if self._listening is not None:
                    return
                try:
                    await self._connect_listener()
                    return
                except Exception:
                    pass
            await asyncio.sleep(1.0)


class _AdvisoryLeadership:
    """A session advisory lock, on a connection kept for it alone."""

    def __init__(self, url: str, key: int) -> None:
        self._url = url
        self._key = key
        self._connection: asyncpg.Connection | None = None
        self._held = False
        self._broken = False

    async def try_acquire(self) -> bool:
        """A failed check says False but keeps the connection (which may still hold the
        lock): the caller stops what the lead allowed, then `release()`s, so the next holder
        never overlaps this one."""
        if self._broken:  # the last check failed and nobody let go since: do it now
            await self.release()
        try:
            if self._connection is None or self._connection.is_closed():
                self._held = False
                async with asyncio.timeout(5.0):
                    self._connection = await asyncpg.connect(self._url, server_settings=_SESSION)
            async with asyncio.timeout(5.0):
                if self._held:
                    await self._connection.fetchval("SELECT 1")  # still connected: still held
                else:
                    self._held = bool(
                        await self._connection.fetchval(
                            "SELECT pg_try_advisory_lock($1)", self._key
                        )
                    )
        except (Exception, TimeoutError):
            _log.warning("the database did not confirm the lead")
            self._held = False
            self._broken = True
            return False
        return self._held

    async def release(self) -> None:
        self._held = self._broken = False
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close(timeout=2.0)


# Every connection's session: UTC, a name operators see in pg_stat_activity, and limits so
# that a replica frozen or cut off mid-transaction (SIGSTOP, a paused VM, a partition) does
# not hold the transactions' lock for everyone: the server ends such a session, and notices
# a peer gone silent within half a minute.
_SESSION = {
    "application_name": "imagine-bot",
    "timezone": "UTC",
    "idle_in_transaction_session_timeout": "15s",
    "lock_timeout": "10s",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
_MIGRATION_TIME = 3600.0  # a migration, and the wait for another replica's, may be long


async def _version(connection: Any) -> int:
    exists = await connection.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    value = await connection.fetchval("SELECT MAX(version) FROM schema_version")
    return int(value or 0)


@contextlib.contextmanager
def _conflicts() -> Any:
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        raise Conflict(str(error)) from error
