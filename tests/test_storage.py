"""The storage layer, on SQLite or PostgreSQL (IMAGINE_TEST_DATABASE): migrations at
start-up, and state moves that only one racer wins."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.core.lifecycle import FailureKind, TaskKind, TaskState
from bot.core.task import Caps, Charge, NewTask, Task
from bot.engine.job import ClaimCheck
from fakes.postgres import run_sql
from storage.claims import ClaimLost
from storage.database import Conflict, Database, chat_lock
from storage.ledger import LedgerRepository
from storage.migrations import all_migrations
from storage.payments import NewPayment, PaymentRepository
from storage.tasks import TaskRepository
from storage.telegram_pace import Bucket, TelegramPace
from storage.upstream_pace import UpstreamPace
from tests.conftest import eventually


async def create(tasks: TaskRepository, new: NewTask) -> Task:
    task = await tasks.create(new)
    assert isinstance(task, Task)
    return task


def new_task(**changes: object) -> NewTask:
    values: dict[str, object] = {
        "kind": TaskKind.TEXT_TO_IMAGE,
        "chat_id": 1,
        "chat_type": "private",
        "user_id": 1,
        "lang": "en",
        "prompt": "p",
        "aspect_ratio": "1:1",
    }
    values.update(changes)
    return NewTask(**values)  # type: ignore[arg-type]


@pytest.mark.sqlite_only
async def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "db.sqlite3"
    database = await Database.open(path)
    assert await database.schema_version() == len(all_migrations())
    await database.close()
    again = await Database.open(path)  # a second start applies nothing twice
    assert await again.schema_version() == len(all_migrations())
    row = await again.fetch_one("PRAGMA journal_mode")
    assert row is not None
    assert row[0] == "wal"
    await again.close()


async def test_only_one_of_many_racing_moves_wins(bot_database: Path | str) -> None:
    database = await Database.open(bot_database)
    tasks = TaskRepository(database)
    task = await create(tasks, new_task())
    await tasks.mark_submitting(task.id, "kie", at=0.0)
    await tasks.mark_running(task.id, "u1")
    await tasks.mark_succeeded(task.id, ["http://x/1.png"], at=0.0)
    claims = await asyncio.gather(*(tasks.mark_delivering(task.id) for _ in range(20)))
    assert sum(1 for claim in claims if claim is not None) == 1
    stored = await tasks.get(task.id)
    assert stored is not None
    assert stored.state is TaskState.DELIVERING
    assert stored.result_urls == ("http://x/1.png",)
    await database.close()


async def test_a_move_and_a_note_return_the_task_as_they_left_it(
    bot_database: Path | str,
) -> None:
    """The engine takes the row a move returns instead of reading the task again: it must
    be the row a read would give."""
    database = await Database.open(bot_database)
    tasks = TaskRepository(database)
    task = await create(tasks, new_task())
    await tasks.mark_submitting(task.id, "kie", at=0.0)
    running = await tasks.mark_running(task.id, "u1")
    assert running is not None
    assert running.state is TaskState.RUNNING
    assert running.upstream_task_id == "u1"
    assert running == await tasks.get(task.id)
    succeeded = await tasks.mark_succeeded(task.id, ["http://x/1.png"], at=5.0)
    assert succeeded is not None
    assert succeeded.result_urls == ("http://x/1.png",)
    assert succeeded.finished_at == 5.0
    assert await tasks.mark_succeeded(task.id, ["http://x/2.png"], at=6.0) is None  # done once
    noted = await tasks.note_album(task.id, [11, 12], ["f1", "f2"])
    assert noted is not None
    assert noted.album_message_ids == (11, 12)
    assert noted.media_file_ids == ("f1", "f2")
    await tasks.mark_delivering(task.id)
    delivered = await tasks.mark_delivered(task.id, at=7.0)  # in a transaction, with its commit
    assert delivered is not None
    assert delivered.state is TaskState.DELIVERED
    assert delivered == await tasks.get(task.id)
    assert await tasks.note_buttons(10_000, 1) is None  # no such task
    await database.close()


async def test_moves_the_lifecycle_does_not_allow_are_refused(bot_database: Path | str) -> None:
    database = await Database.open(bot_database)
    tasks = TaskRepository(database)
    task = await create(tasks, new_task())
    assert not await tasks.mark_delivered(task.id, at=0.0)  # pending cannot jump to the end
    assert not await tasks.mark_running(task.id, "u0")  # nor skip submitting
    assert await tasks.mark_failed(task.id, FailureKind.REJECTED, at=0.0)
    assert not await tasks.mark_failed(
        task.id, FailureKind.REJECTED, at=0.0
    )  # a failure is recorded once
    assert [t.id for t in await tasks.unfinished()] == [task.id]
    assert await tasks.mark_reported(task.id)
    assert await tasks.unfinished() == []
    await database.close()


async def test_one_upstream_task_belongs_to_one_task(bot_database: Path | str) -> None:
    database = await Database.open(bot_database)
    tasks = TaskRepository(database)
    first = await create(tasks, new_task())
    second = await create(tasks, new_task())
    for task in (first, second):
        await tasks.mark_submitting(task.id, "kie", at=0.0)
    assert await tasks.mark_running(first.id, "same")
    with pytest.raises(Conflict):
        await tasks.mark_running(second.id, "same")
    found = await tasks.find_by_upstream_id("kie", "same")
    assert found is not None
    assert found.id == first.id
    await database.close()


async def test_a_task_is_claimed_by_one_process_while_its_heartbeat_lasts(
    bot_database: Path | str,
) -> None:
    database = await Database.open(bot_database)
    tasks = TaskRepository(database)
    task = await create(tasks, new_task())
    for i in range(10):
        await tasks.claims.beat(f"p{i}", until=160.0)
    racing = [tasks.claims.claim(task.id, f"p{i}", now=100.0) for i in range(10)]
    won = [claimed is not None for claimed in await asyncio.gather(*racing)]
    assert won.count(True) == 1
    owner = f"p{won.index(True)}"
    other = "p1" if owner != "p1" else "p2"
    again = await tasks.claims.claim(task.id, owner, now=110.0)  # its own: still its own
    assert again is not None
    assert again.id == task.id
    assert None is await tasks.claims.claim(task.id, other, now=159.0)
    assert [t.id for t in await tasks.claims.claimable(other, now=159.0)] == []
    assert [t.id for t in await tasks.claims.claimable(owner, now=159.0)] == [task.id]
    assert await tasks.claims.claimable_ids(owner, now=159.0) == {task.id: True}
    await tasks.claims.beat(owner, until=300.0)  # one row for the process, however many tasks
    assert None is await tasks.claims.claim(task.id, other, now=250.0)
    # The owner died: once its heartbeat has run out, the task is anyone's.
    assert await tasks.claims.claimable_ids(other, now=301.0) == {task.id: False}
    assert await tasks.claims.claim(task.id, other, now=301.0) is not None
    # The owner, woken, finds the task gone from it.
    assert await tasks.claims.taken_from(owner, [task.id]) == {task.id}
    assert not await tasks.claims.holds(task.id, owner)
    # A graceful stop lets go at once; a finished task is nobody's to claim.
    await tasks.claims.release_claims(other)
    assert await tasks.claims.claim(task.id, owner, now=302.0) is not None
    await tasks.mark_failed(task.id, FailureKind.REJECTED, at=303.0)
    await tasks.mark_reported(task.id)
    assert None is await tasks.claims.claim(task.id, other, now=1000.0)
    assert await tasks.claims.claimable(other, now=1000.0) == []
    await database.close()


async def test_a_call_about_a_task_leaves_only_while_nobody_could_take_the_task_over(
    bot_database: Path | str,
) -> None:
    """A call about a task asks whether it may leave as it goes (`ClaimCheck`): only while
    the process holds the claim and its heartbeat has more than a margin to run (before it
    ends nobody may take the task over). The answer is trusted for a moment (`trust`)."""
    database = await Database.open(bot_database)
    tasks = TaskRepository(database)
    task = await create(tasks, new_task())
    now = [100.0]
    await tasks.claims.beat("a", until=120.0)
    assert await tasks.claims.claim(task.id, "a", now=now[0]) is not None
    assert await tasks.claims.held_until(task.id, "a") == 120.0
    assert await tasks.claims.held_until(task.id, "b") is None
    check = ClaimCheck(tasks.claims, task.id, "a", clock=lambda: now[0], trust=3.0, margin=5.0)
    assert await check()

    async def claimed_by(owner: str) -> None:
        await database.execute("UPDATE tasks SET claimed_by = ? WHERE id = ?", (owner, task.id))

    await claimed_by("b")  # what a process that believed "a" dead would write
    now[0] = 102.9
    assert await check()  # trusted: read 2.9 s ago
    now[0] = 103.0
    assert not await check()  # asked again: gone
    assert not await check()  # and a claim lost is never trusted

    # Its own, but its heartbeat within the margin of its end (a process woken after a
    # freeze, or stalled): another may be taking the task over; nothing leaves.
    await claimed_by("a")
    now[0] = 116.0
    assert not await check()
    # Once it has beaten again and the task is still its own, calls leave again.
    await tasks.claims.beat("a", until=136.0)
    assert await check()
    await database.close()


async def test_a_process_whose_task_was_taken_over_can_write_nothing_of_it(
    bot_database: Path | str,
) -> None:
    """Every move and note a worker makes goes through `held_by(owner)`: in the same
    statement as the claim's check, so a replica that woke after another took its task over
    changes nothing of it (no state, no refund, no message noted)."""
    database = await Database.open(bot_database)
    tasks = TaskRepository(database)
    task = await create(tasks, new_task())
    await tasks.claims.beat("a", until=100.0)
    await tasks.claims.beat("b", until=1000.0)
    a, b = tasks.held_by("a"), tasks.held_by("b")
    assert await tasks.claims.claim(task.id, "a", now=50.0) is not None
    assert await a.mark_submitting(task.id, "kie", at=51.0) == "sent"
    # "a" froze; its heartbeat ran out; "b" took the task over.
    assert await tasks.claims.claim(task.id, "b", now=200.0) is not None
    with pytest.raises(ClaimLost):
        await a.mark_running(task.id, "up-1")
    with pytest.raises(ClaimLost):
        await a.mark_failed(task.id, FailureKind.TIMEOUT, at=201.0)
    with pytest.raises(ClaimLost):
        await a.note_status_message(task.id, 5)
    unchanged = await tasks.get(task.id)
    assert unchanged is not None
    assert unchanged.state is TaskState.SUBMITTING
    assert unchanged.status_message_id is None
    assert unchanged.failure_kind is None
    # The holder moves it; a move that loses to another for the state (not the claim) is
    # None, as before.
    assert await b.mark_running(task.id, "up-1") is not None
    assert await b.mark_running(task.id, "up-1") is None
    # Writes that are not a worker's (a callback, a /cancel) go through the plain one.
    assert await tasks.note_status_message(task.id, 6) is not None
    await database.close()


@pytest.mark.sqlite_only
async def test_claims_are_kept_up_on_unfinished_tasks_only_by_the_index(tmp_path: Path) -> None:
    # Looking for tasks to pick up every few seconds must not read the finished tasks of
    # years: the claim queries name the partial index's exact condition, so SQLite uses it.
    from storage.claims import _FREE_FOR
    from storage.task_rows import UNFINISHED

    database = await Database.open(tmp_path / "db.sqlite3")
    plan = await database.fetch_all(
        f"EXPLAIN QUERY PLAN SELECT id, claimed_by FROM tasks WHERE {UNFINISHED} AND {_FREE_FOR}",
        ("me", 1.0),
    )
    assert "USING INDEX tasks_unfinished" in " ".join(str(row[3]) for row in plan)
    await database.close()


@pytest.mark.sqlite_only
async def test_the_payments_migration_keeps_every_ledger_row_and_balance(tmp_path: Path) -> None:
    """0007 builds the ledger anew (SQLite cannot widen a CHECK): a database of version 6
    keeps its rows, and so its balances."""
    path = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(path)
    for migration in all_migrations()[:6]:
        connection.executescript(
            f"BEGIN;\n{migration.sql}\nPRAGMA user_version = {migration.version};\nCOMMIT;"
        )
    connection.execute(
        "INSERT INTO ledger (chat_id, user_id, kind, amount, from_daily, day, created_at)"
        " VALUES (7, 1, 'grant', 30, 0, '2026-11-30', 1.0),"
        " (7, 1, 'reserve', 5, 2, '2026-11-30', 2.0)"
    )
    connection.commit()
    connection.close()

    database = await Database.open(path)
    assert await database.schema_version() == len(all_migrations())
    rows = await database.fetch_all("SELECT kind, amount, from_daily, from_purchased FROM ledger")
    assert [tuple(r) for r in rows] == [("grant", 30, 0, 0), ("reserve", 5, 2, 0)]
    balance = await LedgerRepository(database).balance(chat_id=7, day="2026-11-30", daily_limit=10)
    assert (balance.daily_left, balance.granted, balance.purchased) == (8, 27, 0)
    await database.close()


async def test_a_refund_takes_back_purchased_credits_held_by_a_task_not_yet_done(
    bot_database: Path | str,
) -> None:
    """Regression: a task holding purchased credits when the purchase is refunded must not
    hand them back to the chat when it fails afterwards."""
    database = await Database.open(bot_database)
    payments, tasks = PaymentRepository(database), TaskRepository(database)
    paid = NewPayment("charge-1", 42, 42, "Ann", "en", None, credits=10, stars=5)
    await payments.record(paid, now=100.0)
    task = await tasks.create(
        new_task(chat_id=42), Charge(5, daily_limit=0, user_cap=None, now=100.0)
    )
    assert isinstance(task, Task)
    refunded = await payments.take_back("charge-1", now=101.0)
    assert refunded is not None
    assert refunded.taken == 10
    await tasks.mark_failed(task.id, FailureKind.REJECTED, at=102.0)  # its 5 come back…
    balance = await LedgerRepository(database).balance(chat_id=42, day="1970-01-01", daily_limit=0)
    assert balance.purchased == 0  # …to a purchase that is gone
    await database.close()


async def test_only_results_telegram_can_send_again_are_in_a_history(
    bot_database: Path | str,
) -> None:
    database = await Database.open(bot_database)
    tasks = TaskRepository(database)
    for file_ids in (["", ""], ["photo-1", ""]):  # documents and links keep no id
        task = await create(tasks, new_task())
        await tasks.note_album(task.id, [1, 2], file_ids)
        await database.execute("UPDATE tasks SET state = 'delivered' WHERE id = ?", (task.id,))
    found, total = await tasks.delivered_of(1, 1, offset=0, limit=5)
    assert ([t.media_file_ids for t in found], total) == ([("photo-1", "")], 1)
    assert [t.media_file_ids for t in await tasks.images_of(1, 5)] == [("photo-1", "")]
    await database.close()


@pytest.mark.sqlite_only
async def test_a_transaction_cancelled_again_while_it_begins_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    """Regression: a stopping engine cancels a worker again; a second cancellation during
    the clean-up of a BEGIN that waited for another writer skipped its ROLLBACK, and the
    next statements landed in a transaction nobody would commit."""
    path = tmp_path / "db.sqlite3"
    database = await Database.open(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the database

    async def write() -> None:
        async with database.transaction() as connection:
            await connection.execute("UPDATE tasks SET lang = 'x'")

    writing = asyncio.create_task(write())
    for _ in range(3):
        await asyncio.sleep(0.05)  # the BEGIN is waiting for the other writer
        writing.cancel()
    other.execute("ROLLBACK")
    with pytest.raises(asyncio.CancelledError):
        await writing
    await create(TaskRepository(database), new_task())  # a write on its own: committed
    assert other.execute("SELECT COUNT(*) FROM tasks").fetchone() == (1,)
    other.close()
    await database.close()


def test_both_databases_have_the_same_migrations() -> None:
    sqlite = [(m.version, m.name) for m in all_migrations("sqlite")]
    postgres = [(m.version, m.name) for m in all_migrations("postgresql")]
    assert sqlite == postgres


async def test_migrations_apply_once_on_every_database(bot_database: Path | str) -> None:
    # Three replicas starting together: each migration is applied once.
    opened = await asyncio.gather(*(Database.open(bot_database) for _ in range(3)))
    for database in opened:
        assert await database.schema_version() == len(all_migrations())
        await database.close()


@pytest.mark.sqlite_only
async def test_a_new_file_opened_by_several_at_once(tmp_path: Path) -> None:
    # Regression: of processes switching a new file to WAL at the same moment, SQLite tells
    # one "database is locked" at once, and the open failed (one CI run in three). The
    # race is narrow: it is run on thirty new files.
    for n in range(30):
        path = tmp_path / f"new-{n}.sqlite3"
        opened = await asyncio.gather(*(Database.open(path) for _ in range(3)))
        for database in opened:
            assert await database.schema_version() == len(all_migrations())
            await database.close()


async def test_an_accounts_caps_count_every_processs_tasks(bot_database: Path | str) -> None:
    # Two processes on one database (two handles): the caps hold for both together.
    first, second = (await Database.open(bot_database), await Database.open(bot_database))
    tasks_a, tasks_b = TaskRepository(first), TaskRepository(second)
    made = [await create(tasks_a, new_task(chat_id=n)) for n in range(1, 6)]
    caps = Caps(running=2, per_hour=3)
    at = 10_000.0
    outcomes = [
        await (tasks_a if n % 2 else tasks_b).mark_submitting(task.id, "kie", at=at, caps=caps)
        for n, task in enumerate(made[:3])
    ]
    assert outcomes == ["sent", "sent", "full"]  # two running
    await tasks_a.mark_running(made[0].id, "u0")
    await tasks_a.mark_succeeded(made[0].id, ["http://x/1.png"], at=at)
    assert await tasks_b.mark_submitting(made[2].id, "kie", at=at, caps=caps) == "sent"
    # Room for one more running, but three were sent within the hour.
    await tasks_a.mark_running(made[1].id, "u1")
    await tasks_a.mark_failed(made[1].id, FailureKind.GENERATION, at=at)
    assert await tasks_a.mark_submitting(made[3].id, "kie", at=at + 10, caps=caps) == "full"
    assert await tasks_a.mark_submitting(made[3].id, "kie", at=at + 3601, caps=caps) == "sent"
    assert await tasks_a.mark_submitting(made[3].id, "kie", at=at + 3601, caps=caps) == "gone"
    for database in (first, second):
        await database.close()


async def test_three_processes_reserving_at_once_never_overspend(bot_database: Path | str) -> None:
    # A chat with 20 credits, 5 a task, asked for 12 tasks at once through three processes
    # (three handles, each its own connections): exactly 4 are recorded, and the ledger
    # shows 20 reserved. Beside it, ten chats of 10 credits ask for 3 tasks each: 2 each.
    handles = [await Database.open(bot_database) for _ in range(3)]
    repositories = [TaskRepository(handle) for handle in handles]
    charge = Charge(5, daily_limit=20, user_cap=None, now=100.0)
    small = Charge(5, daily_limit=10, user_cap=None, now=100.0)
    asked = [(9, charge)] * 12 + [(chat, small) for chat in range(100, 110) for _ in range(3)]
    made = await asyncio.gather(
        *(
            repositories[n % 3].create(new_task(chat_id=chat), price)
            for n, (chat, price) in enumerate(asked)
        )
    )
    recorded = [task.chat_id for task in made if isinstance(task, Task)]
    assert recorded.count(9) == 4
    assert all(recorded.count(chat) == 2 for chat in range(100, 110))
    ledger = LedgerRepository(handles[0])
    balance = await ledger.balance(chat_id=9, day="1970-01-01", daily_limit=20)
    assert (balance.daily_spent, balance.daily_left) == (20, 0)
    for chat in range(100, 110):
        balance = await ledger.balance(chat_id=chat, day="1970-01-01", daily_limit=10)
        assert (balance.daily_spent, balance.daily_left) == (10, 0)
    for handle in handles:
        await handle.close()


@pytest.mark.postgres_only
async def test_a_chats_reservation_waits_only_for_that_chats(bot_database: Path | str) -> None:
    # No lock of the whole database: while one process decides on chat 1 (its lock held in
    # an open transaction), another process records a task for chat 2; chat 1's waits.
    holder, other = (await Database.open(bot_database), await Database.open(bot_database))
    tasks = TaskRepository(other)
    charge = Charge(5, daily_limit=20, user_cap=None, now=100.0)
    async with holder.transaction(locks=[chat_lock(1)]) as session:
        await session.fetch_one("SELECT 1")
        assert isinstance(await tasks.create(new_task(chat_id=2), charge), Task)
        waiting = asyncio.create_task(tasks.create(new_task(chat_id=1), charge))
        await eventually(lambda: _waits_for_a_lock(bot_database))
        assert not waiting.done()
    assert isinstance(await waiting, Task)
    for database in (holder, other):
        await database.close()


def _waits_for_a_lock(target: Path | str) -> bool:
    rows = run_sql(
        target,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND wait_event = 'advisory'",
    )
    return bool(rows[0][0])


@pytest.mark.postgres_only
async def test_a_nudge_reaches_the_process_that_drives_the_task(bot_database: Path | str) -> None:
    sender, driver = (await Database.open(bot_database), await Database.open(bot_database))
    heard: list[int] = []
    await TaskRepository(driver).claims.on_nudge(heard.append)
    await TaskRepository(sender).claims.nudge(42)
    for _ in range(200):
        if heard:
            break
        await asyncio.sleep(0.01)
    assert heard == [42]
    for database in (sender, driver):
        await database.close()


@pytest.mark.postgres_only
async def test_one_process_at_a_time_leads_and_another_takes_over(
    bot_database: Path | str,
) -> None:
    first, second = (await Database.open(bot_database), await Database.open(bot_database))
    lead_a, lead_b = first.leadership("polling"), second.leadership("polling")
    assert await lead_a.try_acquire()
    assert not await lead_b.try_acquire()
    assert await lead_a.try_acquire()  # still held
    await first.close()  # the leader's process ends: its connection closes
    assert await lead_b.try_acquire()
    await second.close()


async def test_processes_sharing_a_pace_reserve_moments_one_interval_apart(
    bot_database: Path | str,
) -> None:
    # A chat's bucket of 3 at 1 a second, all chats' of 30 at 30 a second: two processes
    # reserving six messages to one chat at the same moment get 3 at once, then 1 a second.
    handles = [await Database.open(bot_database) for _ in range(2)]
    paces = [TelegramPace(handle) for handle in handles]
    chat, every = Bucket(3, 1.0), Bucket(30, 30.0)
    moments = [await paces[n % 2].reserve(5, chat, every, now=1000.0) - 1000.0 for n in range(6)]
    assert [round(m, 6) for m in moments] == [0, 0, 0, 1, 2, 3]
    # Another chat is not held up by this one, only by all chats' pace (not yet full).
    assert await paces[0].reserve(6, chat, every, now=1000.0) == 1000.0
    # Asking when the next would leave books nothing.
    assert await paces[1].next_free(5, chat, every, now=1000.0) == pytest.approx(1004.0)
    assert await paces[0].next_free(5, chat, every, now=1000.0) == pytest.approx(1004.0)
    await paces[1].forget(before=2000.0)
    assert await paces[1].reserve(5, chat, every, now=1000.0) == 1000.0  # forgotten: empty
    for handle in handles:
        await handle.close()


async def test_processes_sharing_an_accounts_status_reads_keep_to_its_pace(
    bot_database: Path | str,
) -> None:
    # 2 at once, then 8 a second, for three processes' reads together; another account's
    # reads are not held up by this one's.
    handles = [await Database.open(bot_database) for _ in range(3)]
    paces = [UpstreamPace(handle) for handle in handles]
    bucket = Bucket(2, 8.0)
    moments = [await paces[n % 3].reserve("a", bucket, now=500.0) - 500.0 for n in range(6)]
    assert [round(m, 6) for m in moments] == [0, 0, 0.125, 0.25, 0.375, 0.5]
    assert await paces[1].reserve("b", bucket, now=500.0) == 500.0
    for handle in handles:
        await handle.close()


async def test_every_processs_tasks_take_turns_by_chat_in_one_line(
    bot_database: Path | str,
) -> None:
    # Three processes record tasks: chat 1 five, then chat 2 two, then chat 3 one. The
    # line (and each task's place) takes one of each chat a round, whoever recorded it.
    handles = [await Database.open(bot_database) for _ in range(3)]
    repositories = [TaskRepository(handle) for handle in handles]
    asked = [1] * 5 + [2] * 2 + [3]
    made = [
        await create(repositories[n % 3], new_task(chat_id=chat)) for n, chat in enumerate(asked)
    ]
    places = await repositories[1].places()
    in_line = sorted(made, key=lambda task: places[task.id])
    assert [task.chat_id for task in in_line] == [1, 2, 3, 1, 2, 1, 1, 1]
    # The first one leaves the line: the places move up; a new chat joins the round under way.
    await repositories[0].mark_submitting(in_line[0].id, "kie", at=1.0)
    late = await create(repositories[2], new_task(chat_id=4))
    places = await repositories[0].places()
    assert places[late.id] == 3  # after chats 2 and 3 of this round
    assert places[in_line[1].id] == 1
    for handle in handles:
        await handle.close()
