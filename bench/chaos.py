"""Chaos: three replicas on one PostgreSQL database (a throwaway server), webhook mode
behind a load balancer, 300 `/imagine` from 300 chats; every 10 s a random replica is
killed with -9 and started again 5 s later (under its name, as compose restarts it). The
Telegram test server enforces its flood limits. At the end, every task is checked:

- lost: a task not delivered and not reported (its chat heard nothing), or an update
  that made no task;
- duplicated: a chat that got two albums, or an upstream task made twice for one prompt;
- unexplained: a task whose ledger rows are not one reservation and one settlement
  matching its outcome (commit if delivered, refund if not);
- takeover: from a kill to the moment each task the killed replica held was driven again
  (its lease renewed by a live process, or its state moved on).

    .venv/bin/python -m bench.chaos
    .venv/bin/python -m bench.chaos --tasks 60 --kill-every 5

Prints each figure beside its target.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bot.telegram.flood import MESSAGE_METHODS
from fakes.audit import audit
from fakes.bot_under_test import BOT_TOKEN, PROVIDER_KEY
from fakes.kie import FakeKie, Scenario
from fakes.postgres import ThrowawayPostgres, run_sql
from fakes.replicas import Replica, Replicas
from fakes.telegram import FakeTelegram, FakeUser


def line(name: str, value: str, target: str) -> None:
    print(f"   {name:<46} {value:>14}   target {target}")


async def rows(url: str, sql: str) -> list[Any]:
    return await asyncio.to_thread(run_sql, url, sql)


async def watch_takeover(url: str, held: dict[int, tuple[str, str]], killed_at: float) -> float:
    """Seconds until every task in `held` (id → its holder and state at the kill) was driven
    again by a live process (another holds it, or it moved on)."""
    waiting = dict(held)
    while waiting:
        now_rows = await rows(url, "SELECT id, claimed_by, state FROM tasks")
        for row in now_rows:
            task_id, holder, state = row[0], row[1], row[2]
            if task_id in waiting and (
                holder != waiting[task_id][0]
                or state != waiting[task_id][1]
                or state in ("delivered", "reported")
            ):
                del waiting[task_id]
        await asyncio.sleep(0.2)
    return time.time() - killed_at


async def run(tasks: int, replicas_count: int, kill_every: float, restart_after: float) -> int:
    postgres = ThrowawayPostgres()
    postgres.start()
    telegram = FakeTelegram(BOT_TOKEN)
    kie = FakeKie(PROVIDER_KEY, scenario=Scenario(duration=4.0))
    await telegram.start()
    await kie.start()
    telegram.flood_limits = True
    url = postgres.new_database()
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    group = Replicas(
        telegram,
        kie,
        url,
        replicas_count,
        settings={"MAX_CONCURRENT_TASKS": "40", "MAX_TASKS_PER_HOUR": "100000"},
        log_folder=folder,
    )
    kills: list[float] = []
    takeovers: list[asyncio.Task[float]] = []
    try:
        await group.start()
        started = time.time()
        users = [FakeUser(900_000 + n, f"chaos{n}", "en") for n in range(tasks)]
        for user in users:
            telegram.send_text(telegram.private_chat(user), user, f"/imagine chaos {user.id}")

        async def chaos() -> None:
            rng = random.Random(7)
            restarts: list[asyncio.Task[None]] = []
            for number in range(1, 10_000):  # a kill every `kill_every` seconds from the start
                await asyncio.sleep(max(0.0, started + number * kill_every - time.time()))
                victim: Replica = rng.choice([r for r in group.replicas if r.alive])
                held = {
                    row[0]: (row[1], row[2])
                    for row in await rows(
                        url,
                        "SELECT id, claimed_by, state FROM tasks WHERE claimed_by = "
                        f"'{victim.name}' AND state NOT IN ('delivered', 'reported')",
                    )
                }
                await victim.kill()
                killed_at = time.time()
                kills.append(killed_at - started)
                print(
                    f"  {killed_at - started:5.0f} s: killed {victim.name} holding"
                    f" {len(held)} tasks",
                    file=sys.stderr,
                )
                takeovers.append(asyncio.create_task(watch_takeover(url, held, killed_at)))
                restarts.append(asyncio.create_task(restart_later(victim)))

        async def restart_later(victim: Replica) -> None:
            await asyncio.sleep(restart_after)
            await group.restart(victim)

        chaos_task = asyncio.create_task(chaos())
        deadline = time.time() + 900
        while True:
            states = await rows(url, "SELECT state FROM tasks")
            done = sum(1 for row in states if row[0] in ("delivered", "reported"))
            if len(states) == tasks and done == tasks:
                break
            if time.time() > deadline:
                break
            await asyncio.sleep(1.0)
        chaos_task.cancel()
        elapsed = time.time() - started
        takeover_times = [await t for t in takeovers]
    finally:
        await group.stop()
        await kie.stop()
        await telegram.stop()

    found = audit(telegram, url)
    postgres.stop()

    all_tasks = found.tasks
    by_chat = Counter(task["chat_id"] for task in all_tasks)
    final = [t for t in all_tasks if t["state"] in ("delivered", "reported")]
    delivered = [t for t in all_tasks if t["state"] == "delivered"]
    # Not recorded, not final, or delivered without its album.
    lost = (tasks - len(all_tasks)) + len(found.not_final) + len(found.missing_albums)
    # An album twice, a second task for one message, an upstream task made twice.
    duplicated = len(found.extra_albums) + sum(1 for n in by_chat.values() if n > 1)
    prompts = Counter(c.request["input"]["prompt"] for c in kie.created)
    duplicated += sum(1 for n in prompts.values() if n > 1)
    unexplained = len(found.unexplained)
    reported = Counter(t["failure_kind"] for t in all_tasks if t["state"] == "reported")

    print(f"\nchaos: {replicas_count} replicas, {tasks} tasks, a kill every {kill_every:.0f} s")
    line("tasks settled", f"{len(final)} / {tasks}", f"{tasks}")
    line("time to settle all", f"{elapsed:.0f} s", "(informational)")
    line("kills (kill -9, restarted after)", f"{len(kills)} ({restart_after:.0f} s)", "≥ 3")
    line("lost", f"{lost}", "0")
    line("duplicated", f"{duplicated}", "0")
    line("ledger rows not explaining a task", f"{unexplained}", "0")
    line("delivered", f"{len(delivered)}", "(informational)")
    line("reported and refunded", f"{dict(reported) or 0}", "(informational)")
    line("Telegram 429s", f"{telegram.flood_errors}", "0")
    if takeover_times:
        line(
            "kill → its tasks driven again, median",
            f"{statistics.median(takeover_times):.1f} s",
            "≤ 30 s",
        )
        line("kill → its tasks driven again, max", f"{max(takeover_times):.1f} s", "≤ 30 s")
    refused = [c for c in telegram.calls if c.error and "Too Many Requests" in c.error]
    if refused:
        sent = sorted(c.at for c in telegram.calls if c.ok and c.method in MESSAGE_METHODS)
        busiest = max(
            (sum(1 for t in sent[i : i + 40] if t < start + 1.0) for i, start in enumerate(sent)),
            default=0,
        )
        print(
            f"   429s by method {dict(Counter(c.method for c in refused))}, in"
            f" {len({c.params.get('chat_id') for c in refused})} chats; busiest second as"
            f" the test server saw it: {busiest} messages"
        )
    print(f"   replica logs: {folder}")
    ok = (
        lost == 0
        and duplicated == 0
        and unexplained == 0
        and telegram.flood_errors == 0
        and len(final) == tasks
        and all(t <= 30 for t in takeover_times)
    )
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=10.0)
    parser.add_argument("--restart-after", type=float, default=5.0)
    arguments = parser.parse_args()
    sys.exit(
        asyncio.run(
            run(arguments.tasks, arguments.replicas, arguments.kill_every, arguments.restart_after)
        )
    )


if __name__ == "__main__":
    main()
