"""Several bot processes on one PostgreSQL database (run with IMAGINE_TEST_DATABASE=
postgresql): work spread across them, one killed with -9 and its tasks taken over, the
polling leader replaced, a callback at a replica that does not hold the task, and moving a
SQLite bot up with `storage.copy_to_postgres`."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.core.lifecycle import TaskKind
from bot.core.task import Charge, NewTask, Task
from fakes.audit import audit
from fakes.kie import HELD, FakeKie, Scenario
from fakes.postgres import ThrowawayPostgres, run_sql
from fakes.replicas import ROOT, Replicas
from fakes.telegram import FakeTelegram, FakeUser
from storage.database import Database
from storage.ledger import LedgerRepository
from storage.payments import NewPayment, PaymentRepository
from storage.tasks import TaskRepository
from tests.conftest import eventually

pytestmark = pytest.mark.postgres_only

USERS = [FakeUser(7100 + n, f"user{n}", "en") for n in range(12)]


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def copy_to_postgres(source: Path, url: str) -> Ran:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "storage.copy_to_postgres",
        str(source),
        url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


def settled(url: str, count: int) -> bool:
    rows = run_sql(url, "SELECT state FROM tasks")
    return len(rows) == count and all(row[0] in ("delivered", "reported") for row in rows)


async def until_settled(url: str, count: int, timeout: float) -> None:
    try:
        await eventually(lambda: settled(url, count), timeout)
    except TimeoutError:
        rows = run_sql(url, "SELECT id, state, claimed_by FROM tasks ORDER BY id")
        raise AssertionError(f"not settled: {[tuple(row) for row in rows]}") from None


def check_once_and_balanced(telegram: FakeTelegram, url: str) -> None:
    """Every task delivered once (one album in its chat) or reported and refunded, and the
    ledger explains every credit: one reservation and one settlement per task."""
    found = audit(telegram, url)
    rows = [dict(task) for task in found.tasks]
    assert found.not_final == [], rows
    assert (found.missing_albums, found.extra_albums) == ([], []), rows
    assert found.unexplained == [], rows


async def test_replicas_share_the_work_and_one_killed_loses_nothing(
    telegram: FakeTelegram, kie: FakeKie, bot_database: str, tmp_path: Path
) -> None:
    # Telegram's limits hold for the three together. Three processes and PostgreSQL on a
    # busy machine: a message that left on time may arrive up to a second late, its
    # successor not (replicas that did not share the pace would still break the limits
    # many times over).
    telegram.enforce_flood_limits(slack=1.0)
    kie.scenario = Scenario(duration=2.0)
    replicas = Replicas(
        telegram,
        kie,
        bot_database,
        3,
        settings={"TASK_LEASE": "3", "MAX_CONCURRENT_TASKS": "4"},
        log_folder=tmp_path,
    )
    await replicas.start()
    try:
        for user in USERS:
            telegram.send_text(telegram.private_chat(user), user, f"/imagine fox {user.id}")
        await eventually(lambda: len(run_sql(bot_database, "SELECT id FROM tasks")) == 12)
        # Each replica took the tasks of the updates the balancer handed it.
        owners = Counter(
            row[0]
            for row in run_sql(bot_database, "SELECT claimed_by FROM tasks")
            if row[0] is not None
        )
        assert len(owners) >= 2, owners
        await eventually(lambda: len(kie.created) >= 4)  # some running, some queued
        victim_name = owners.most_common(1)[0][0]
        victim = next(r for r in replicas.replicas if r.name == victim_name)
        await victim.kill()
        await until_settled(bot_database, 12, 60)
    finally:
        await replicas.stop()
    check_once_and_balanced(telegram, bot_database)
    prompts = Counter(task.request["input"]["prompt"] for task in kie.created)
    assert max(prompts.values()) == 1  # no upstream task made twice
    delivered = run_sql(bot_database, "SELECT COUNT(*) FROM tasks WHERE state = 'delivered'")
    assert delivered[0][0] >= 10  # at most those being created at the kill are lost upstream
    refused = [
        (c.method, c.params.get("chat_id"))
        for c in telegram.calls
        if c.error and "Too Many" in c.error
    ]
    assert telegram.flood_errors == 0, refused


async def test_the_polling_leader_killed_another_polls_within_seconds(
    telegram: FakeTelegram, kie: FakeKie, bot_database: str, tmp_path: Path
) -> None:
    replicas = Replicas(telegram, kie, bot_database, 2, webhook=False, log_folder=tmp_path)
    await replicas.start()
    try:

        async def leaders() -> list[str]:
            found = []
            for replica in replicas.replicas:
                health = await replica.health()
                if health and health["polling_leader"]:
                    found.append(replica.name)
            return found

        async def one_leader() -> list[str]:
            for _ in range(600):
                found = await leaders()
                if len(found) == 1:
                    return found
                await asyncio.sleep(0.05)
            raise TimeoutError(found)

        [leader] = await one_leader()
        # Both are up and one polls; a second poller's getUpdates would have ended the
        # first's with 409 by now.
        assert telegram.polls >= 1
        assert telegram.poll_conflicts == 0
        await next(r for r in replicas.replicas if r.name == leader).kill()
        killed_at = asyncio.get_running_loop().time()
        [successor] = await one_leader()
        assert successor != leader
        # How soon is bench.chaos's figure; here, only that another leads.
        took = asyncio.get_running_loop().time() - killed_at
        print(f"leader killed; another polls after {took:.2f} s")
        user = USERS[0]
        telegram.send_text(telegram.private_chat(user), user, "/imagine after the leader died")
        await until_settled(bot_database, 1, 60)
    finally:
        await replicas.stop()
    check_once_and_balanced(telegram, bot_database)


async def test_replicas_contending_for_one_account_under_its_hourly_cap_do_not_stall(
    telegram: FakeTelegram, kie: FakeKie, bot_database: str, tmp_path: Path
) -> None:
    # Three replicas, one account of two at once and 38 an hour, 36 requests: the database
    # holds back the creates that would pass the caps ("full"), and a held-back create must
    # not count against a replica's hour, or the replicas stop sending with work waiting.
    kie.scenario = Scenario(duration=1.0)
    replicas = Replicas(
        telegram,
        kie,
        bot_database,
        3,
        settings={"MAX_CONCURRENT_TASKS": "2", "MAX_TASKS_PER_HOUR": "38"},
        log_folder=tmp_path,
    )
    await replicas.start()
    try:
        for round_ in range(3):
            for user in USERS:
                chat = telegram.private_chat(user)
                telegram.send_text(chat, user, f"/imagine round {round_} for {user.id}")
        await until_settled(bot_database, 36, 90)
    finally:
        await replicas.stop()
    check_once_and_balanced(telegram, bot_database)
    assert len(kie.created) == 36
    # Never more than two at once upstream, counted across the replicas.
    moments = sorted(
        [(t.created_at, 1) for t in kie.created] + [(t.done_at, -1) for t in kie.created]
    )
    running = [sum(change for _, change in moments[: n + 1]) for n in range(len(moments))]
    assert max(running) <= 2


async def test_a_heavy_chat_and_light_chats_across_replicas_keep_their_turns(
    telegram: FakeTelegram, kie: FakeKie, bot_database: str, tmp_path: Path
) -> None:
    """One slot, three replicas (requests spread over them by the balancer): a chat that
    asks four times and three chats that ask once take turns over the whole line. When a
    slot frees, the earliest turn gets it, whichever replica drives that task: the replica
    that freed it passes it on."""
    kie.scenario = HELD
    replicas = Replicas(
        telegram,
        kie,
        bot_database,
        3,
        settings={"MAX_CONCURRENT_TASKS": "1", "MAX_TASKS_PER_HOUR": "1000"},
        log_folder=tmp_path,
    )
    await replicas.start()
    heavy, light = USERS[0], USERS[1:4]
    asked = [(heavy, f"heavy {n}") for n in range(4)] + [(u, f"light {u.id}") for u in light]
    try:
        for count, (user, prompt) in enumerate(asked, start=1):
            telegram.send_text(telegram.private_chat(user), user, f"/imagine {prompt}")
            # Recorded one by one: a turn is given in the order requests are recorded.
            await eventually(lambda count=count: recorded(bot_database) == count)  # type: ignore[misc]
        for done in range(len(asked)):
            await eventually(lambda done=done: len(kie.created) == done + 1)  # type: ignore[misc]
            kie.finish(kie.created[done])
        await until_settled(bot_database, len(asked), 90)
    finally:
        await replicas.stop()
    check_once_and_balanced(telegram, bot_database)
    by_turn = [
        row[0] for row in run_sql(bot_database, "SELECT prompt FROM tasks ORDER BY turn, id")
    ]
    made = [t.request["input"]["prompt"] for t in kie.created]
    held = {row[0]: row[1] for row in run_sql(bot_database, "SELECT prompt, claimed_by FROM tasks")}
    assert made == by_turn, [(prompt, held[prompt]) for prompt in made]
    # The light chats went before the heavy chat's third and fourth.
    assert max(by_turn.index(f"light {u.id}") for u in light) < by_turn.index("heavy 2")
    # And the tasks were driven by more than one replica (or this proves nothing).
    assert len(set(held.values()) - {None}) >= 2


def recorded(url: str) -> int:
    return len(run_sql(url, "SELECT id FROM tasks"))


async def test_a_429_and_an_outage_met_by_one_replica_hold_every_replica(
    telegram: FakeTelegram, kie: FakeKie, bot_database: str, tmp_path: Path
) -> None:
    # Three replicas, one account. An account's pause and breaker are the cluster's: what
    # one replica meets, none of the others sends into, and the operators hear of it once.
    kie.scenario = Scenario(duration=0.2)
    operator = FakeUser(4242, "Operator", "en")
    telegram.private_chat(operator)  # (the operators have talked to the bot)
    replicas = Replicas(
        telegram,
        kie,
        bot_database,
        3,
        settings={"ADMIN_USER_IDS": str(operator.id)},
        log_folder=tmp_path,
    )
    await replicas.start()

    def send(users: list[FakeUser], what: str) -> None:
        for user in users:
            telegram.send_text(telegram.private_chat(user), user, f"/imagine {what} {user.id}")

    def account_state(column: str) -> float | None:
        rows = run_sql(bot_database, f"SELECT {column} FROM account_states")
        return rows[0][0] if rows else None

    try:
        # 1. A 429 asking for 4 s: once a replica has met it, no create leaves any replica
        # before the pause is over.
        kie.fail_creates(429, "Too many requests", http_status=429, headers={"Retry-After": "4"})
        send(USERS[:1], "first")
        await eventually(lambda: (account_state("paused_until") or 0) > 0)
        paused_until = account_state("paused_until") or 0
        send(USERS[1:7], "paused")
        await until_settled(bot_database, 7, 60)
        assert len(kie.created) == 7
        assert min(t.created_at for t in kie.created) >= paused_until

        # 2. The account runs dry: the one create that meets the 402 takes it out of every
        # replica's rotation. Requests meanwhile wait (no replica tries the account) until a
        # check, by one replica, finds it topped up.
        kie.credits = 0
        attempts = kie.create_attempts
        send(USERS[7:8], "dry")
        await eventually(lambda: account_state("opened_at") is not None)
        send(USERS[8:12], "waiting")
        await eventually(lambda: len(run_sql(bot_database, "SELECT id FROM tasks")) == 12)
        checks = kie.credit_checks
        await eventually(lambda: kie.credit_checks > checks)  # 10-15 s on
        assert kie.create_attempts == attempts + 1
        kie.credits = 500
        await until_settled(bot_database, 12, 90)
    finally:
        await replicas.stop()
    check_once_and_balanced(telegram, bot_database)
    alerts = [c.result["text"] for c in telegram.calls_of("sendMessage", operator.id) if c.ok]
    assert len(alerts) == 2, alerts  # out of credits, then back: once each
    assert alerts[0].startswith("⚠️ The kie account is out of credits")
    assert alerts[1] == "✅ The kie account is back in rotation."


async def test_a_frozen_replica_woken_after_its_tasks_were_taken_over_repeats_nothing(
    telegram: FakeTelegram, kie: FakeKie, bot_database: str, tmp_path: Path
) -> None:
    # Two replicas, leases of 3 s. One is frozen (SIGSTOP) while the upstream works on its
    # tasks; the other takes them over and delivers them; the frozen one is woken. Every
    # move is conditional on the task's state: no second create, no second album, one
    # charge each.
    kie.scenario = HELD
    replicas = Replicas(
        telegram, kie, bot_database, 2, settings={"TASK_LEASE": "3"}, log_folder=tmp_path
    )
    await replicas.start()
    try:
        for user in USERS[:6]:
            telegram.send_text(telegram.private_chat(user), user, f"/imagine frozen {user.id}")
        await eventually(lambda: len(kie.created) == 6)
        await eventually(
            lambda: len(run_sql(bot_database, "SELECT id FROM tasks WHERE state = 'running'")) == 6
        )
        owners = Counter(row[0] for row in run_sql(bot_database, "SELECT claimed_by FROM tasks"))
        frozen_name = owners.most_common(1)[0][0]
        frozen = next(r for r in replicas.replicas if r.name == frozen_name)
        assert frozen.process is not None
        frozen.process.send_signal(signal.SIGSTOP)
        try:
            await eventually(
                lambda: (
                    not run_sql(
                        bot_database, "SELECT id FROM tasks WHERE claimed_by = ?", (frozen_name,)
                    )
                )
            )
            for task in kie.created:
                kie.finish(task)
            await until_settled(bot_database, 6, 60)
        finally:
            frozen.process.send_signal(signal.SIGCONT)
        # Woken, each of its workers reads its task's state anew, finds it delivered, and
        # ends: nothing is done twice.
        for _ in range(600):
            health = await frozen.health()
            if health is not None and health.get("tasks_in_flight") == 0:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the woken replica still works: {health}")
    finally:
        await replicas.stop()
    check_once_and_balanced(telegram, bot_database)
    assert len(kie.created) == 6
    assert kie.create_attempts == 6


async def test_a_callback_at_a_replica_that_does_not_hold_the_task(
    telegram: FakeTelegram, kie: FakeKie, bot_database: str, tmp_path: Path
) -> None:
    # Two replicas; the upstream's callbacks come through the balancer to either one. With
    # the poll net far away (callback mode), the result arrives only if the replica that
    # hears a callback tells the one that drives the task.
    kie.scenario = Scenario(duration=0.5)
    replicas = Replicas(telegram, kie, bot_database, 2, log_folder=tmp_path)
    await replicas.start()
    try:
        for user in USERS[:6]:
            telegram.send_text(telegram.private_chat(user), user, f"/imagine call {user.id}")
        await until_settled(bot_database, 6, 60)
    finally:
        await replicas.stop()
    check_once_and_balanced(telegram, bot_database)
    # Each result was read because a callback said so: before the poll net's first read,
    # 20 s after the create (production's clocks in the replicas).
    assert all(t.read_times and t.read_times[0] < t.created_at + 20 for t in kie.created)
    heard = replicas.balancer.served
    assert len(heard) == 2  # both replicas answered requests (updates and callbacks)


async def test_a_sqlite_bot_moves_to_postgres_with_every_row_and_balance(
    tmp_path: Path, postgres: ThrowawayPostgres
) -> None:
    source = tmp_path / "bot.sqlite3"
    sqlite = await Database.open(source)
    tasks, payments = TaskRepository(sqlite), PaymentRepository(sqlite)
    charge = Charge(5, daily_limit=100, user_cap=None, now=1_700_000_000.0)
    made = []
    for n in range(3):
        task = await tasks.create(
            NewTask(TaskKind.TEXT_TO_IMAGE, 42, "private", 42, "en", f"p{n}", "1:1"), charge
        )
        assert isinstance(task, Task)
        made.append(task)
    await tasks.mark_failed(made[0].id, "generation", at=1.0)  # type: ignore[arg-type]
    await LedgerRepository(sqlite).grant(chat_id=42, operator_id=1, amount=30, day="d", now=2.0)
    await payments.record(NewPayment("ch-1", 42, 42, "Ann", "en", None, 50, 25), now=3.0)
    await sqlite.execute("INSERT INTO star_scan (id, next_offset) VALUES (1, 7)")
    await sqlite.close()

    url = postgres.new_database()
    copied = await copy_to_postgres(source, url)
    assert copied.returncode == 0, copied.stderr
    assert "tasks: 3 rows in SQLite, 3 in PostgreSQL" in copied.stdout
    assert "everything matches" in copied.stdout

    moved = await Database.open(url)
    balance = await LedgerRepository(moved).balance(chat_id=42, day="2023-11-14", daily_limit=100)
    assert (balance.daily_left, balance.granted, balance.purchased) == (90, 30, 50)
    after = await TaskRepository(moved).create(
        NewTask(TaskKind.TEXT_TO_IMAGE, 42, "private", 42, "en", "next", "1:1")
    )
    assert isinstance(after, Task)
    assert after.id == made[-1].id + 1  # PostgreSQL's ids go on from the copied ones
    await moved.close()

    again = await copy_to_postgres(source, url)
    assert again.returncode == 1
    assert "not empty: nothing copied" in again.stderr


async def test_three_replicas_answering_one_chat_keep_its_pace(
    telegram: FakeTelegram, kie: FakeKie, bot_database: str, tmp_path: Path
) -> None:
    # Eight commands in one private chat, handed round to three replicas: each replica
    # alone would send its replies at once (three fit its own bucket), eight together
    # break Telegram's one a second. The shared pace spaces them out (arrival jitter of
    # three processes on a busy machine forgiven up to a second: eight at once, what
    # replicas that did not share the pace send, still break the limit four times).
    telegram.enforce_flood_limits(slack=1.0)
    replicas = Replicas(telegram, kie, bot_database, 3, log_folder=tmp_path)
    await replicas.start()
    try:
        user = USERS[0]
        chat = telegram.private_chat(user)
        for _ in range(8):
            telegram.send_text(chat, user, "/help")
        await telegram.wait_for(
            lambda: len([c for c in telegram.calls_of("sendMessage", chat.id) if c.ok]) == 8
        )
    finally:
        await replicas.stop()
    refused = [
        c.params.get("text", "")[:20] for c in telegram.calls if c.error and "Too Many" in c.error
    ]
    assert telegram.flood_errors == 0, refused
    assert len(replicas.balancer.served) == 3  # all three answered some


async def test_a_replica_killed_while_delivering_has_the_result_delivered_once(
    telegram: FakeTelegram, kie: FakeKie, bot_database: str, tmp_path: Path
) -> None:
    # The album is on its way when its replica dies: the request never reaches Telegram,
    # and the replica that takes the task over sends it, once, and commits the credits once.
    kie.scenario = Scenario(duration=0.3)
    replicas = Replicas(
        telegram, kie, bot_database, 2, settings={"TASK_LEASE": "3"}, log_folder=tmp_path
    )
    await replicas.start()
    try:
        user = USERS[0]
        chat = telegram.private_chat(user)
        telegram.hold("sendMediaGroup", chat.id)
        telegram.send_text(chat, user, "/imagine on its way")
        await telegram.wait_for(lambda: telegram.held)
        [task] = run_sql(bot_database, "SELECT state, claimed_by FROM tasks")
        assert task["state"] == "delivering"
        await next(r for r in replicas.replicas if r.name == task["claimed_by"]).kill()
        telegram.release()
        await until_settled(bot_database, 1, 60)
        [after] = run_sql(bot_database, "SELECT state, claimed_by FROM tasks")
        assert after["claimed_by"] != task["claimed_by"]  # the other replica took it over
    finally:
        await replicas.stop()
    check_once_and_balanced(telegram, bot_database)
    assert len(telegram.held) == 1  # the one that died on the way
