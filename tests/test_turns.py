"""The database's line: what waits `ahead` goes first (storage/turns.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage.sqlite import SQLiteDatabase
from storage.turns import TurnLock


async def _take(lock: TurnLock, name: str, order: list[str], *, ahead: bool = False) -> None:
    async with lock.turn(ahead=ahead):
        order.append(name)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiters_ahead_of_the_line_go_first_each_line_in_its_order() -> None:
    lock = TurnLock()
    order: list[str] = []
    await lock.acquire()  # held: everyone below waits
    waiters = [
        asyncio.create_task(_take(lock, "note 1", order)),
        asyncio.create_task(_take(lock, "note 2", order)),
        asyncio.create_task(_take(lock, "slot 1", order, ahead=True)),
        asyncio.create_task(_take(lock, "note 3", order)),
        asyncio.create_task(_take(lock, "slot 2", order, ahead=True)),
    ]
    await _settle()
    assert lock.waiting() == 5
    lock.release()
    await asyncio.gather(*waiters)
    assert order == ["slot 1", "slot 2", "note 1", "note 2", "note 3"]
    assert lock.waiting() == 0


async def test_statements_through_a_database_ahead_view_go_first(tmp_path: Path) -> None:
    """Which statements go ahead is said where they are made: through the database's
    `ahead_of_the_line()` view, which shares its connection and its line."""
    database = await SQLiteDatabase.connect(tmp_path / "turns.sqlite3")
    try:
        await database.execute("CREATE TABLE said (what TEXT)")
        first = database.ahead_of_the_line()
        held = asyncio.Event()
        go_on = asyncio.Event()

        async def busy() -> None:
            async with database.transaction():
                held.set()
                await go_on.wait()

        holder = asyncio.create_task(busy())
        await held.wait()
        waiting = [
            asyncio.create_task(database.execute("INSERT INTO said VALUES ('a note')")),
            asyncio.create_task(first.execute("INSERT INTO said VALUES ('a slot')")),
            asyncio.create_task(database.execute("INSERT INTO said VALUES ('another note')")),
        ]
        await _settle()
        go_on.set()
        await asyncio.gather(holder, *waiting)
        rows = await database.fetch_all("SELECT what FROM said ORDER BY rowid")
        assert [row[0] for row in rows] == ["a slot", "a note", "another note"]
        # The view is the same database: what it wrote, the other reads.
        counted = await first.fetch_one("SELECT count(*) FROM said")
        assert counted is not None
        assert counted[0] == 3
    finally:
        await database.close()


async def test_a_cancelled_waiter_never_holds_the_lock() -> None:
    lock = TurnLock()
    order: list[str] = []
    await lock.acquire()
    gone = asyncio.create_task(_take(lock, "cancelled", order, ahead=True))
    stays = asyncio.create_task(_take(lock, "stays", order))
    await _settle()
    gone.cancel()
    await _settle()
    assert lock.waiting() == 1
    lock.release()
    await stays
    assert order == ["stays"]
    assert gone.cancelled()
    await asyncio.wait_for(lock.acquire(), 1)  # free again


async def test_a_waiter_cancelled_as_its_turn_came_passes_the_turn_on() -> None:
    lock = TurnLock()
    order: list[str] = []
    await lock.acquire()
    unlucky = asyncio.create_task(_take(lock, "unlucky", order))
    next_one = asyncio.create_task(_take(lock, "next", order))
    await _settle()
    lock.release()  # the turn is handed to "unlucky"…
    unlucky.cancel()  # …which is cancelled before it runs
    await next_one
    assert order == ["next"]
    assert unlucky.cancelled()
    await asyncio.wait_for(lock.acquire(), 1)  # and nobody kept it
