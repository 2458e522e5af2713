"""A pool of upstream accounts under load: 3 accounts of cap 50 (each answers 429 past it),
tasks of 1 s, 1,500 /imagine from 300 chats at once. Run twice: all accounts healthy, then
with one account answering 402 ("out of credits") from a third of the way through. The bot
runs as its own process (`bench.bot_process`: production clocks and flood control) with
results by callback; the Telegram test server does not enforce flood limits here, as what
is measured is the upstream side.

    .venv/bin/python -m bench.pool
    .venv/bin/python -m bench.pool --tasks 300 --chats 60

Prints each figure beside its target.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.bot_process import settled, start_bot, stop_bot
from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeTelegram, FakeUser


def line(name: str, value: str, target: str) -> None:
    print(f"   {name:<44} {value:>16}   target {target}")


async def run_once(
    tasks: int,
    chats: int,
    cap: int,
    task_seconds: float,
    accounts: int,
    fail_one: bool,
    bot_log: str | None = None,
) -> None:
    from fakes.bot_under_test import BOT_TOKEN

    telegram = FakeTelegram(BOT_TOKEN)
    servers = [
        FakeKie(f"bench-key-{n}", scenario=Scenario(duration=task_seconds), max_running=cap)
        for n in range(accounts)
    ]
    await telegram.start()
    for server in servers:
        await server.start()
    with tempfile.TemporaryDirectory() as folder:
        providers = Path(folder) / "providers.toml"
        providers.write_text(
            "".join(
                f'[[account]]\nname = "acct-{n}"\nprovider = "kie"\n'
                f'api_key = "{server.api_key}"\nbase_url = "{server.url}"\n'
                f"max_concurrent = {cap}\nmax_tasks_per_hour = {tasks + cap}\n"
                for n, server in enumerate(servers)
            )
        )
        database = Path(folder) / "bench.sqlite3"
        log = open(bot_log, "ab") if bot_log else None  # noqa: ASYNC230, SIM115
        process = await start_bot(
            telegram,
            servers[0],
            database,
            settings={
                "PROVIDERS_FILE": str(providers),
                "CHAT_DAILY_CREDITS": str(10 * tasks),
            },
            log=log,
        )
        users = [FakeUser(20_000 + i, f"user{i}", "en") for i in range(chats)]
        rooms = [telegram.private_chat(user) for user in users]
        asked: dict[int, list[str]] = {user.id: [] for user in users}
        for number in range(tasks):
            user = users[number % chats]
            asked[user.id].append(f"p{number}")
            telegram.send_text(rooms[number % chats], user, f"/imagine p{number}")

        def created() -> int:
            return sum(len(server.created) for server in servers)

        failing = servers[-1]
        if fail_one:
            # A third of the way through, the last account runs out of credits for good.
            while created() < tasks // 3:  # noqa: ASYNC110 (counts in the test servers)
                await asyncio.sleep(0.005)
            failing.fail_creates(402, "Insufficient credits", times=10 * tasks)
            failed_from = len(failing.created)

        async def report_progress() -> None:
            started = time.time()
            while True:
                await asyncio.sleep(10)
                print(f"  {time.time() - started:5.0f} s: {created()} created", file=sys.stderr)

        progress = asyncio.create_task(report_progress())
        while not settled(database, tasks):  # noqa: ASYNC110 (the bot's process writes the database)
            await asyncio.sleep(0.2)
        progress.cancel()
        await stop_bot(process)
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT prompt, state, failure_kind, account FROM tasks").fetchall()
            ledger = dict(db.execute("SELECT kind, COUNT(*) FROM ledger GROUP BY kind").fetchall())
    await telegram.stop()
    for server in servers:
        await server.stop()

    albums = Counter(
        c.json("media")[0]["caption"] for c in telegram.calls_of("sendMediaGroup") if c.ok
    )
    upstream = Counter(t.request["input"]["prompt"] for s in servers for t in s.created)
    lost = sum(1 for prompts in asked.values() for p in prompts if albums[p] == 0)
    duplicated = sum(n - 1 for n in albums.values() if n > 1)
    created_twice = sum(n - 1 for n in upstream.values() if n > 1)
    refunded = sum(1 for _, state, _, _ in rows if state in ("failed", "reported"))
    made = [t for s in servers for t in s.created]
    span = max(t.done_at for t in made) - min(t.created_at for t in made)
    ideal = tasks / (cap * accounts) * task_seconds
    per_account = Counter(account for *_, account in rows)
    refused_402 = failing.create_attempts - len(failing.created) if fail_one else 0

    title = "one account answering 402 from a third of the way" if fail_one else "all healthy"
    print(
        f"{tasks} /imagine at once from {chats} chats, {accounts} accounts of cap {cap}, "
        f"tasks of {task_seconds} s: {title}"
    )
    if fail_one:
        after = len(failing.created) - failed_from
        line("402s answered by the failing account", str(refused_402), "-")
        line("tasks it took after it began to refuse", str(after), "0")
        ideal = (tasks / 3) / (cap * accounts) + (tasks * 2 / 3) / (cap * (accounts - 1))
        ideal *= task_seconds
    line(
        "upstream work (first create → last done)",
        f"{span:.1f} s",
        f"≤ {1.15 * ideal:.1f} s (1.15 × {ideal:.1f} s)",
    )
    gaps = _refill_gaps(servers, cap)
    line(
        "a slot taken again after its task ends",
        f"p50 {gaps[len(gaps) // 2]:.2f} s, p90 {gaps[len(gaps) * 9 // 10]:.2f} s",
        "-",
    )
    line("upstream 429s", str(sum(s.refused_429 for s in servers)), "0")
    line("lost / duplicated albums", f"{lost} / {duplicated}", "0 / 0")
    line("tasks created upstream twice", str(created_twice), "0")
    line("tasks refunded", str(refunded), "0")
    line("ledger: reserved / committed / refunded", _ledger(ledger), f"{tasks} / {tasks} / 0")
    line("tasks per account", " ".join(f"{n}" for _, n in sorted(per_account.items())), "-")


def _refill_gaps(servers: list[FakeKie], cap: int) -> list[float]:
    """Per account, how long after a task ended its slot got the next task: the n-th create
    after the first `cap` took the slot the n-th task to end left (sorted, seconds)."""
    gaps: list[float] = []
    for server in servers:
        creates = sorted(t.created_at for t in server.created)
        ends = sorted(t.done_at for t in server.created)
        gaps += [max(0.0, c - e) for c, e in zip(creates[cap:], ends, strict=False)]
    return sorted(gaps) or [0.0]


def _ledger(ledger: dict[str, int]) -> str:
    return f"{ledger.get('reserve', 0)} / {ledger.get('commit', 0)} / {ledger.get('refund', 0)}"


async def bench(arguments: argparse.Namespace) -> None:
    for fail_one in (False, True):
        await run_once(
            arguments.tasks,
            arguments.chats,
            arguments.cap,
            arguments.task_seconds,
            arguments.accounts,
            fail_one,
            arguments.bot_log,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1500)
    parser.add_argument("--chats", type=int, default=300)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--task-seconds", type=float, default=1.0)
    parser.add_argument("--bot-log", help="append the bot's own log to this file")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
