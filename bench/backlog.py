"""A backlog: 10,000 requests waiting behind one account (50 at once, 500 an hour, its tasks
long), on three replicas on one PostgreSQL database (a throwaway server), webhook mode.

The waiting tasks are written straight into the database as unclaimed requests (what an
intake of 10,000 `/imagine` would leave; sending them through Telegram would take minutes of
the bench's time and measure the intake instead). Then it prints:

- how long until the replicas hold as many as they may (MAX_TASKS_HELD each; the rest wait
  as rows);
- memory per replica (resident set size) while they wait;
- database transactions a second while they wait (PostgreSQL's own count, every replica
  together), and Telegram calls a second (status messages posted and edited);
- a replica's restart: killed with -9 and started again, the time until it answers
  /healthz, and until its tasks are driven again.

    .venv/bin/python -m bench.backlog
    .venv/bin/python -m bench.backlog --tasks 2000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.chaos import line, rows
from fakes.bot_under_test import BOT_TOKEN
from fakes.kie import FakeKie, Scenario
from fakes.postgres import ThrowawayPostgres
from fakes.replicas import Replica, Replicas
from fakes.telegram import FakeTelegram, FakeUser

AT_ONCE, PER_HOUR = 50, 500
CHATS = 300
HELD = 2000  # MAX_TASKS_HELD, its default: 3 replicas drive 6,000 and 4,000 wait as rows
WINDOW = 30.0  # seconds over which the waiting is measured


def resident_mb(replica: Replica) -> float:
    assert replica.process is not None
    status = Path(f"/proc/{replica.process.pid}/status").read_text()
    kb = next(int(row.split()[1]) for row in status.splitlines() if row.startswith("VmRSS"))
    return kb / 1024


async def transactions(url: str) -> int:
    [row] = await rows(
        url,
        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
        " WHERE datname = current_database()",
    )
    return int(row[0])


async def until(check: Callable[[], Awaitable[bool]], what: str) -> float:
    started = time.time()
    while not await check():
        if time.time() - started > 900:
            raise TimeoutError(what)
        await asyncio.sleep(0.5)
    return time.time() - started


async def statements(url: str, log: Path, seconds: float) -> Counter[str]:
    """The statements every replica ran for `seconds`, by their text (PostgreSQL's own log,
    turned on for that long)."""
    start = (await asyncio.to_thread(log.stat)).st_size
    await rows(url, "ALTER SYSTEM SET log_statement = 'all'")
    await rows(url, "SELECT pg_reload_conf()")
    await asyncio.sleep(seconds)
    await rows(url, "ALTER SYSTEM RESET log_statement")
    await rows(url, "SELECT pg_reload_conf()")
    text = (await asyncio.to_thread(log.read_bytes))[start:].decode(errors="replace")
    found: Counter[str] = Counter()
    for entry in text.split("LOG:  ")[1:]:
        if entry.startswith(("statement: ", "execute ")):
            body = entry.split(": ", 1)[1] if entry.startswith("statement") else entry
            found[" ".join(body.split())[:90]] += 1
    return found


async def run(tasks: int, show_statements: bool) -> int:
    postgres = ThrowawayPostgres()
    postgres.start()
    telegram = FakeTelegram(BOT_TOKEN)
    kie = FakeKie("backlog-key", scenario=Scenario(duration=3600.0), max_running=AT_ONCE)
    await telegram.start()
    await kie.start()
    telegram.flood_limits = True
    url = postgres.new_database()
    folder = Path(tempfile.mkdtemp(prefix="backlog-"))
    group = Replicas(
        telegram,
        kie,
        url,
        3,
        settings={
            "MAX_CONCURRENT_TASKS": str(AT_ONCE),
            "MAX_TASKS_PER_HOUR": str(PER_HOUR),
            "LINE_MAX_WAIT": "0",
            "MAX_TASKS_HELD": str(HELD),
        },
        log_folder=folder,
    )
    try:
        await group.start()
        for n in range(CHATS):
            telegram.private_chat(FakeUser(900_000 + n, f"backlog{n}", "en"))
        await rows(
            url,
            "INSERT INTO tasks (kind, state, account, chat_id, chat_type, user_id, lang, prompt,"
            " aspect_ratio, created_at, updated_at, turn)"
            f" SELECT 'text_to_image', 'pending', '', 900000 + n % {CHATS}, 'private',"
            f" 900000 + n % {CHATS}, 'en', 'backlog ' || n, '1:1', {time.time()}, {time.time()},"
            f" n / {CHATS} FROM generate_series(0, {tasks - 1}) AS n",
        )

        # Each replica drives at most HELD tasks (MAX_TASKS_HELD); the rest wait as rows.
        can_hold = min(tasks, 3 * HELD)

        async def all_claimed() -> bool:
            [row] = await rows(url, "SELECT COUNT(*) FROM tasks WHERE claimed_by IS NOT NULL")
            return int(row[0]) >= can_hold

        claimed_after = await until(all_claimed, "tasks never all claimed")
        await asyncio.sleep(10.0)  # the status messages' first wave
        before_tx, before_calls = await transactions(url), len(telegram.calls)
        before_429, before_by = telegram.flood_errors, Counter(telegram.flood_errors_by)
        await asyncio.sleep(WINDOW)
        tx_rate = (await transactions(url) - before_tx) / WINDOW
        calls = Counter(c.method for c in telegram.calls[before_calls:])
        flood_429s = telegram.flood_errors - before_429
        flood_by = Counter(telegram.flood_errors_by)
        flood_by.subtract(before_by)
        top = await statements(url, postgres.log, 5.0) if show_statements else Counter()
        memory = [resident_mb(replica) for replica in group.replicas]
        held = await rows(
            url, "SELECT claimed_by, COUNT(*) FROM tasks GROUP BY claimed_by ORDER BY 1"
        )

        victim = group.replicas[0]
        await victim.kill()
        started = time.time()
        await group.restart(victim)
        healthy_after = time.time() - started

        async def driven_again() -> bool:
            health = await victim.health()
            [row] = await rows(
                url, f"SELECT COUNT(*) FROM tasks WHERE claimed_by = '{victim.name}'"
            )
            return health is not None and health.get("tasks_in_flight", 0) >= int(row[0]) > 0

        resumed_after = time.time() - started + await until(driven_again, "never resumed")
    finally:
        await group.stop()
        await kie.stop()
        await telegram.stop()
        postgres.stop()

    print(f"\nbacklog: {tasks} requests behind one account ({AT_ONCE} at once), 3 replicas")
    line(f"{can_hold} claimed after", f"{claimed_after:.1f} s", "(informational)")
    line("tasks held per replica", ", ".join(f"{r[0]}: {r[1]}" for r in held), "(spread)")
    line("memory per replica (RSS)", ", ".join(f"{m:.0f}" for m in memory) + " MB", "(info)")
    line("database transactions a second, waiting", f"{tx_rate:.0f}", "(informational)")
    for method, count in calls.most_common():
        line(f"  Telegram {method} a second", f"{count / WINDOW:.1f}", "(informational)")
    line("Telegram 429s while waiting", f"{flood_429s}", "0")
    if flood_429s:
        print("   by the limit broken: " + ", ".join(f"{k} {v}" for k, v in flood_by.items() if v))
    for text, count in top.most_common(12):
        print(f"   {count / 5.0:7.1f}/s  {text}")
    line("restart (kill -9): /healthz answers after", f"{healthy_after:.1f} s", "(informational)")
    line("restart: its tasks driven again after", f"{resumed_after:.1f} s", "(informational)")
    print(f"   replica logs: {folder}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument(
        "--statements", action="store_true", help="also print the statements run most often"
    )
    arguments = parser.parse_args()
    sys.exit(asyncio.run(run(arguments.tasks, arguments.statements)))


if __name__ == "__main__":
    main()
