"""The task engine under load: many chats, an upstream that runs at most 50 tasks at once,
optionally a Telegram that enforces its flood limits. The bot runs as its own process
(`bench.bot_process`: production clocks and flood control) so its memory can be read and
the test servers' work is not counted as its own.

    .venv/bin/python -m bench.engine                    # 1,000 tasks from 200 chats
    .venv/bin/python -m bench.engine --flood-limits     # against Telegram's flood limits
    .venv/bin/python -m bench.engine --tasks 200 --chats 40

Prints each figure beside its target.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bot_process import start_bot, stop_bot
from fakes.bot_under_test import BOT_TOKEN, PROVIDER_KEY
from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeTelegram, FakeUser


def memory(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def line(name: str, value: str, target: str) -> None:
    print(f"{name:<44} {value:>16}   target {target}")


async def bench(
    tasks: int, chats: int, cap: int, task_seconds: float, flood: bool, bot_log_path: str | None
) -> None:
    telegram = FakeTelegram(BOT_TOKEN)
    kie = FakeKie(PROVIDER_KEY, scenario=Scenario(duration=task_seconds), max_running=cap)
    await telegram.start()
    await kie.start()
    telegram.flood_limits = flood
    with tempfile.TemporaryDirectory() as folder:
        bot_log = open(bot_log_path, "wb") if bot_log_path else None  # noqa: ASYNC230, SIM115
        process = await start_bot(
            telegram,
            kie,
            Path(folder) / "bench.sqlite3",
            settings={
                "MAX_CONCURRENT_TASKS": str(cap),
                "MAX_TASKS_PER_HOUR": str(max(500, tasks + cap)),  # the warm-up counts too
                "CHAT_DAILY_CREDITS": str(10 * tasks),
            },
            log=bot_log,
        )
        await asyncio.sleep(1.0)
        idle_rss, _ = memory(process.pid)

        # Phase 1: update → task created, below the account cap: one /imagine every 20 ms.
        probes = [FakeUser(90_000 + i, f"probe{i}", "en") for i in range(cap)]
        probe_sent: dict[str, float] = {}
        for number, user in enumerate(probes):
            prompt = f"probe{number}"
            probe_sent[prompt] = time.time()
            telegram.send_text(telegram.private_chat(user), user, f"/imagine {prompt}")
            await asyncio.sleep(0.02)
        await telegram.wait_for(
            lambda: sum(1 for c in telegram.calls_of("sendMediaGroup") if c.ok) >= cap,
            timeout=600,
        )
        probe_created = {
            t.request["input"]["prompt"]: t.created_at
            for t in kie.created
            if t.request["input"]["prompt"] in probe_sent
        }
        to_created = [probe_created[p] - probe_sent[p] for p in probe_sent]
        calls_before = len(telegram.calls)
        created_before = len(kie.created)
        albums_before = sum(1 for c in telegram.calls_of("sendMediaGroup") if c.ok)

        # Phase 2: the load.
        users = [FakeUser(20_000 + i, f"user{i}", "en") for i in range(chats)]
        rooms = [telegram.private_chat(user) for user in users]
        asked: dict[int, list[str]] = {user.id: [] for user in users}
        sent_at: dict[str, float] = {}
        started = time.time()
        for number in range(tasks):
            user = users[number % chats]
            prompt = f"p{number}"
            asked[user.id].append(prompt)
            sent_at[prompt] = time.time()
            telegram.send_text(rooms[number % chats], user, f"/imagine {prompt}")

        def albums() -> list[tuple[str, str]]:
            return [
                (c.params["chat_id"], c.json("media")[0]["caption"])
                for c in telegram.calls_of("sendMediaGroup")
                if c.ok and not c.json("media")[0]["caption"].startswith("probe")
            ]

        async def report_progress() -> None:
            # On stderr, so a slow or stuck run shows where it is.
            while True:
                await asyncio.sleep(10)
                print(
                    f"  {time.time() - started:5.0f} s: {len(kie.created) - created_before} "
                    f"created, {len(albums())} albums, {len(telegram.calls) - calls_before} "
                    f"Telegram calls, {telegram.flood_errors} flood errors",
                    file=sys.stderr,
                )

        progress = asyncio.create_task(report_progress())
        await telegram.wait_for(lambda: len(albums()) >= tasks, timeout=3600)
        progress.cancel()
        assert albums_before >= cap
        last_album = max(c.at for c in telegram.calls_of("sendMediaGroup") if c.ok)
        _, peak_rss = memory(process.pid)
        await stop_bot(process)

    await telegram.stop()
    await kie.stop()

    delivered: dict[str, list[str]] = {}
    for chat_id, prompt in albums():
        delivered.setdefault(chat_id, []).append(prompt)
    lost = sum(1 for prompts in asked.values() for p in prompts if p not in sent_at) + sum(
        1 for uid, prompts in asked.items() for p in prompts if p not in delivered.get(str(uid), [])
    )
    duplicated = sum(len(v) - len(set(v)) for v in delivered.values())
    in_order = all(delivered.get(str(uid), []) == prompts for uid, prompts in asked.items())
    load = kie.created[created_before:]
    upstream_span = max(t.done_at for t in load) - min(t.created_at for t in load)
    ideal = tasks / cap * task_seconds
    bot_calls = telegram.calls[calls_before:]  # the load's own calls, not the warm-up's
    calls_per_task = len(bot_calls) / tasks

    print(
        f"{tasks} /imagine at once from {chats} chats (after {cap} one by one), upstream cap "
        f"{cap}, tasks of {task_seconds} s, "
        f"Telegram flood limits {'on' if flood else 'off'}, results by callback"
    )
    line(
        "upstream work (first create → last done)",
        f"{upstream_span:.1f} s",
        f"≤ {1.15 * ideal:.1f} s (1.15 × {ideal:.0f} s)",
    )
    line("upstream 429s", str(kie.refused_429), "0")
    line("lost / duplicated results", f"{lost} / {duplicated}", "0 / 0")
    line("every chat's results in the order asked", "yes" if in_order else "NO", "yes")
    line(
        f"update → task created, median ({cap} below the cap)",
        f"{statistics.median(to_created) * 1000:.1f} ms",
        "≤ 20 ms",
    )
    line(
        "update → task created, p99",
        f"{sorted(to_created)[int(0.99 * (len(to_created) - 1))] * 1000:.1f} ms",
        "≤ 100 ms",
    )
    line(
        "last album after the first update",
        f"{last_album - started:.1f} s",
        f"≤ {1.15 * len(bot_calls) / 30:.1f} s (1.15 × calls ÷ 30/s)" if flood else "-",
    )
    line("Telegram flood errors", str(telegram.flood_errors), "0" if flood else "-")
    line("Telegram calls per task", f"{calls_per_task:.2f}", "fewer is better; floor 2")
    line("bot memory, idle", f"{idle_rss:.0f} MB", "≤ 90 MB")
    line("bot memory, peak", f"{peak_rss:.0f} MB", "≤ 150 MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--task-seconds", type=float, default=1.0)
    parser.add_argument("--flood-limits", action="store_true")
    parser.add_argument("--bot-log", help="write the bot's own log to this file")
    arguments = parser.parse_args()
    asyncio.run(
        bench(
            arguments.tasks,
            arguments.chats,
            arguments.cap,
            arguments.task_seconds,
            arguments.flood_limits,
            arguments.bot_log,
        )
    )


if __name__ == "__main__":
    main()
