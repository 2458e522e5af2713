"""The cluster: three replicas on one PostgreSQL database (a throwaway server), webhook mode
behind the load balancer, a pool of two accounts (50 at once, 500 an hour each, the test
upstreams enforcing the 50 with a 429), 1,000 `/imagine` from 300 chats, tasks of 2 s. The
Telegram test server enforces its flood limits. Three runs:

- calm: nothing goes wrong;
- kills: a replica killed with -9 every 10 s (started again 5 s later, as compose would);
- freeze: a replica frozen (SIGSTOP) for 30 s from the 5th second, then woken.

Each prints beside its target: the upstream's work (first create to last task done) against
the ideal (1,000 / 100 at once × 2 s = 20 s; target 1.15 ×), upstream 429s, Telegram 429s,
lost and duplicated tasks (as `bench.chaos` counts them).

    .venv/bin/python -m bench.cluster
    .venv/bin/python -m bench.cluster --runs calm --tasks 300
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.chaos import line, rows
from fakes.audit import audit
from fakes.bot_under_test import BOT_TOKEN
from fakes.kie import FakeKie, Scenario
from fakes.postgres import ThrowawayPostgres
from fakes.replicas import Replica, Replicas
from fakes.telegram import FakeTelegram, FakeUser

AT_ONCE, PER_HOUR, SECONDS = 50, 500, 2.0


def providers_file(folder: Path, accounts: list[FakeKie]) -> Path:
    lines = []
    for number, account in enumerate(accounts, start=1):
        lines += [
            "[[account]]",
            f'name = "acc{number}"',
            'provider = "kie"',
            f'api_key = "{account.api_key}"',
            f'base_url = "{account.url}"',
            f"max_concurrent = {AT_ONCE}",
            f"max_tasks_per_hour = {PER_HOUR}",
        ]
    path = folder / "providers.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def run(kind: str, tasks: int, chats: int, postgres: ThrowawayPostgres) -> bool:
    telegram = FakeTelegram(BOT_TOKEN)
    upstreams = [
        FakeKie(f"key-{n}", scenario=Scenario(duration=SECONDS), max_running=AT_ONCE)
        for n in range(2)
    ]
    await telegram.start()
    for upstream in upstreams:
        await upstream.start()
    telegram.flood_limits = True
    url = postgres.new_database()
    folder = Path(tempfile.mkdtemp(prefix=f"cluster-{kind}-"))
    group = Replicas(
        telegram,
        upstreams[0],
        url,
        3,
        settings={
            "PROVIDERS_FILE": str(providers_file(folder, upstreams)),
            # A create cut short by a kill has an unknown outcome: its task waits for the
            # upstream's callback until TASK_TIMEOUT, then is reported and refunded. Tasks
            # here take 2 s, so two minutes is ample, and the run ends within its deadline.
            "TASK_TIMEOUT": "120",
        },
        log_folder=folder,
    )
    background: list[asyncio.Task[None]] = []
    try:
        await group.start()
        started = time.time()
        users = [FakeUser(800_000 + n, f"cluster{n}", "en") for n in range(chats)]
        for number in range(tasks):
            user = users[number % chats]
            chat = telegram.private_chat(user)
            telegram.send_text(chat, user, f"/imagine cluster {number}")
        if kind == "kills":
            background.append(asyncio.create_task(kill_every(group, started, 10.0, 5.0)))
        elif kind == "freeze":
            background.append(asyncio.create_task(freeze(group.replicas[0], 5.0, 30.0)))
        deadline = time.time() + 900
        while time.time() < deadline:
            states = await rows(url, "SELECT state FROM tasks")
            done = sum(1 for row in states if row[0] in ("delivered", "reported"))
            if len(states) >= tasks and done == len(states):
                break
            await asyncio.sleep(1.0)
        settled_after = time.time() - started
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        for replica in group.replicas:
            if replica.process is not None and replica.alive:
                replica.process.send_signal(signal.SIGCONT)
    finally:
        await group.stop()
        for upstream in upstreams:
            await upstream.stop()
        await telegram.stop()

    found = audit(telegram, url)
    all_tasks = found.tasks
    created = [t for upstream in upstreams for t in upstream.created]
    work = max(t.done_at for t in created) - min(t.created_at for t in created) if created else 0.0
    ideal = tasks / (2 * AT_ONCE) * SECONDS
    lost = (tasks - len(all_tasks)) + len(found.not_final) + len(found.missing_albums)
    by_message = Counter((t["chat_id"], t["request_message_id"]) for t in all_tasks)
    prompts = Counter(c.request["input"]["prompt"] for c in created)
    duplicated = (
        len(found.extra_albums)
        + sum(1 for n in by_message.values() if n > 1)
        + sum(1 for n in prompts.values() if n > 1)
    )
    upstream_429s = sum(upstream.refused_429 for upstream in upstreams)
    reported = Counter(t["failure_kind"] for t in all_tasks if t["state"] == "reported")
    recorded = [t["created_at"] for t in all_tasks]
    intake = max(recorded) - min(recorded) if recorded else 0.0

    print(f"\ncluster, {kind}: 3 replicas, 2 accounts, {tasks} /imagine from {chats} chats")
    line("upstream work (first create → last done)", f"{work:.1f} s", f"≤ {1.15 * ideal:.1f} s")
    line("  against the ideal", f"{work / ideal:.2f} ×", "≤ 1.15 ×")
    line("upstream 429s", f"{upstream_429s}", "0")
    line("Telegram 429s", f"{telegram.flood_errors}", "0")
    line("lost", f"{lost}", "0")
    line("duplicated", f"{duplicated}", "0")
    if duplicated:
        print(
            f"   (a second album: {len(found.extra_albums)}, a second task for a message:"
            f" {sum(1 for n in by_message.values() if n > 1)}, an upstream task made twice:"
            f" {sum(1 for n in prompts.values() if n > 1)})"
        )
    line("ledger rows not explaining a task", f"{len(found.unexplained)}", "0")
    line("reported and refunded", f"{dict(reported) or 0}", "(informational)")
    line("requests recorded (first → last)", f"{intake:.1f} s", "(informational)")
    if created and recorded:
        after = max(t.done_at for t in created) - max(recorded)
        line(
            "last request recorded → last task done", f"{after:.1f} s", f"(a task: {SECONDS:.0f} s)"
        )
    line("all settled after", f"{settled_after:.0f} s", "(informational)")
    print(f"   replica logs: {folder}")
    return lost == 0 and duplicated == 0 and not found.unexplained


async def kill_every(group: Replicas, started: float, every: float, back_after: float) -> None:
    for number in range(1, 10_000):
        await asyncio.sleep(max(0.0, started + number * every - time.time()))
        victim = [r for r in group.replicas if r.alive][number % 3 - 1 if number % 3 else 0]
        await victim.kill()
        print(f"  {time.time() - started:5.0f} s: killed {victim.name}", file=sys.stderr)
        await asyncio.sleep(back_after)
        await group.restart(victim)


async def freeze(replica: Replica, after: float, seconds: float) -> None:
    await asyncio.sleep(after)
    assert replica.process is not None
    replica.process.send_signal(signal.SIGSTOP)
    print(f"  froze {replica.name} for {seconds:.0f} s", file=sys.stderr)
    try:
        await asyncio.sleep(seconds)
    finally:
        replica.process.send_signal(signal.SIGCONT)


async def main_async(runs: list[str], tasks: int, chats: int) -> int:
    postgres = ThrowawayPostgres()
    postgres.start()
    try:
        results = [await run(kind, tasks, chats, postgres) for kind in runs]
    finally:
        postgres.stop()
    return 0 if all(results) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=["calm", "kills", "freeze"])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--chats", type=int, default=300)
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main_async(arguments.runs, arguments.tasks, arguments.chats)))


if __name__ == "__main__":
    main()
