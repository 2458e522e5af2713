"""Move a bot up from SQLite to PostgreSQL: every row, then a check that they arrived.

    python -m storage.copy_to_postgres data/imagine-bot.sqlite3 postgresql://…/imagine

Stop the bot first (its file must not change while it is copied). Both databases are
brought to the newest schema, the rows go over in one PostgreSQL transaction (the target
must be empty), and before it commits the two are compared: the number of rows of every
table, and every chat's balance (the day's allowance spent, granted and purchased credits).
Any difference rolls the copy back. It says what it copied and whether everything matched,
and exits 1 if not.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bot.core.quota import utc_day
from storage import ledger
from storage.database import Session, is_postgres_url
from storage.postgres import PostgresDatabase, session_of
from storage.sqlite import SQLiteDatabase

# Parents before children (a task's parent and source are older tasks: ids in order).
TABLES = (
    "tasks",
    "ledger",
    "chat_settings",
    "drafts",
    "payments",
    "star_scan",
    "served_files",
    "task_requests",
)
# Tables whose ids PostgreSQL hands out: its counters go on from the highest copied.
_IDENTITIES = ("tasks", "ledger", "drafts")


@dataclass(frozen=True, slots=True)
class Report:
    rows: dict[str, tuple[int, int]]  # table → (in SQLite, in PostgreSQL)
    chats: int  # chats whose balances were compared
    different: list[str]  # what did not match

    @property
    def ok(self) -> bool:
        return not self.different

    def lines(self) -> list[str]:
        out = [
            f"{table}: {was} rows in SQLite, {now} in PostgreSQL"
            for table, (was, now) in self.rows.items()
        ]
        out.append(f"balances compared: {self.chats} chats")
        if self.ok:
            out.append("everything matches: the bot can start on PostgreSQL (DATABASE_URL)")
        else:
            out += [f"DIFFERENT: {what}" for what in self.different]
            out.append("nothing copied (the copy was rolled back)")
        return out


class _Different(Exception):
    def __init__(self, report: Report) -> None:
        super().__init__("the copy does not match")
        self.report = report


async def copy(source: Path, url: str) -> Report:
    sqlite = await SQLiteDatabase.connect(source)
    postgres = await PostgresDatabase.connect(url, pool_size=2)
    try:
        async with postgres.connection() as target:
            for table in TABLES:
                if await target.fetchval(f"SELECT COUNT(*) FROM {table}"):
                    raise SystemExit(
                        f"{table} in the PostgreSQL database is not empty: nothing copied"
                    )
            try:
                async with target.transaction():
                    for table in TABLES:
                        await _copy_table(sqlite, target, table)
                    for table in _IDENTITIES:
                        await target.execute(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                            f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                        )
                    # Compared inside the copy's transaction: a difference commits nothing.
                    report = await _compare(sqlite, session_of(target))
                    if not report.ok:
                        raise _Different(report)
            except _Different as different:
                return different.report
        return report
    finally:
        await sqlite.close()
        await postgres.close()


async def _copy_table(sqlite: SQLiteDatabase, target: Any, table: str) -> None:
    columns = [row["name"] for row in await sqlite.fetch_all(f"PRAGMA table_info({table})")]
    types = {
        row["column_name"]: row["data_type"]
        for row in await target.fetch(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1",
            table,
        )
    }
    convert = [_converter(types[column]) for column in columns]
    order = " ORDER BY id" if table in _IDENTITIES else ""
    rows = await sqlite.fetch_all(f"SELECT {', '.join(columns)} FROM {table}{order}")
    records = [tuple(f(value) for f, value in zip(convert, row, strict=True)) for row in rows]
    await target.copy_records_to_table(table, records=records, columns=columns)


def _converter(data_type: str) -> Any:
    """SQLite keeps whatever type a value came in; PostgreSQL's column says which."""
    if data_type == "double precision":
        return lambda value: None if value is None else float(value)
    if data_type == "bigint":
        return lambda value: None if value is None else int(value)
    if data_type == "bytea":
        return lambda value: None if value is None else bytes(value)
    return lambda value: value


async def _compare(sqlite: SQLiteDatabase, postgres: Session) -> Report:
    rows: dict[str, tuple[int, int]] = {}
    different: list[str] = []
    for table in TABLES:
        was, now = await _count(sqlite, table), await _count(postgres, table)
        rows[table] = (was, now)
        if was != now:
            different.append(f"{table}: {was} rows, then {now}")
    chats = [row[0] for row in await sqlite.fetch_all("SELECT DISTINCT chat_id FROM ledger")]
    day = utc_day(time.time())
    for chat_id in chats:
        async with sqlite.transaction() as session:
            before = await ledger.balance(session, chat_id=chat_id, day=day, daily_limit=0)
        after = await ledger.balance(postgres, chat_id=chat_id, day=day, daily_limit=0)
        if before != after:
            different.append(f"chat {chat_id}: balance {before} in SQLite, {after} after")
    return Report(rows, len(chats), different)


async def _count(session: Session, table: str) -> int:
    row = await session.fetch_one(f"SELECT COUNT(*) FROM {table}")
    return int(row[0]) if row is not None else 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not is_postgres_url(argv[1]) or not Path(argv[0]).is_file():
        print(
            "usage: python -m storage.copy_to_postgres <sqlite file> <postgresql://… URL>",
            file=sys.stderr,
        )
        return 2
    try:
        report = asyncio.run(copy(Path(argv[0]), argv[1]))
    except (OSError, asyncpg.PostgresError) as error:
        print(f"nothing copied: {error}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
