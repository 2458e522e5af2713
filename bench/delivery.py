"""How fast a finished upstream task becomes an album in the chat, by callback or polling.

Starts the loopback Telegram and kie test servers and the real bot, sends `/imagine` from
several chats at once, and prints, per task:
- completion → album: from the moment the upstream task is done (polling mode) or from its
  callback (callback mode) to the album request reaching the Telegram server;
- update → upstream task: from the update being available to the task existing upstream;
- status requests per task.

    .venv/bin/python -m bench.delivery                      # production clocks, tasks of 5–15 s
    .venv/bin/python -m bench.delivery --results polling
    .venv/bin/python -m bench.delivery --clock test --tasks 200
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bot.app import run
from bot.engine import Timing
from bot.settings import Settings
from tests.conftest import BOT_TOKEN, FAST, PROVIDER_KEY, public_endpoint
from tests.fakes.kie import FakeKie, Scenario
from tests.fakes.telegram import FakeTelegram, FakeUser


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def describe(name: str, values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    scaled = [v * scale for v in values]
    return (
        f"{name:<32} median {statistics.median(scaled):8.1f} {unit}   "
        f"p99 {percentile(scaled, 0.99):8.1f} {unit}   max {max(scaled):8.1f} {unit}"
    )


async def bench(tasks: int, chats: int, clock: str, results: str, spread: float, seed: int) -> None:
    rng = random.Random(seed)
    timing = Timing() if clock == "production" else FAST
    if clock == "test":
        timing = replace(timing, poll=replace(timing.poll, timeout=120))
    durations = (5.0, 15.0) if clock == "production" else (0.3, 1.0)

    telegram = FakeTelegram(BOT_TOKEN)
    kie = FakeKie(PROVIDER_KEY)
    await telegram.start()
    await kie.start()
    stop = asyncio.Event()
    with tempfile.TemporaryDirectory() as folder:
        endpoint = public_endpoint() if results == "callback" else {}
        settings = Settings(
            _env_file=None,
            **endpoint,
            telegram_bot_token=BOT_TOKEN,
            telegram_api_url=telegram.url,
            provider_api_key=PROVIDER_KEY,
            provider_base_url=kie.url,
            database_path=Path(folder) / "bench.sqlite3",
        )
        bot = asyncio.create_task(run(settings, stop=stop, timing=timing))
        await telegram.wait_for(lambda: telegram.polls > 0)

        users = [FakeUser(10_000 + i, f"user{i}", "en") for i in range(chats)]
        rooms = [telegram.private_chat(user) for user in users]
        sent_at: dict[str, float] = {}
        started = time.time()
        for number in range(tasks):
            kie.next_scenarios.append(Scenario(duration=rng.uniform(*durations)))
            prompt = f"bench prompt {number}"
            sent_at[prompt] = time.time()
            telegram.send_text(rooms[number % chats], users[number % chats], f"/imagine {prompt}")
            if spread:
                await asyncio.sleep(spread / tasks)

        def albums() -> list[float]:
            return [c.at for c in telegram.calls_of("sendMediaGroup") if c.ok]

        await telegram.wait_for(lambda: len(albums()) >= tasks, timeout=60 + 30 * tasks)
        finished = time.time()
        stop.set()
        await bot

    await telegram.stop()
    await kie.stop()

    done_at = {task.task_id: task.done_at for task in kie.created}
    if results == "callback":
        done_at = {}
        for attempt in kie.callbacks:
            done_at.setdefault(attempt.task_id, attempt.at)
    completion_to_album = []
    for call in telegram.calls_of("sendMediaGroup"):
        if call.ok:
            task_id = call.json("media")[0]["media"].split("/")[-2]
            completion_to_album.append(call.at - done_at[task_id])
    update_to_create = [
        task.created_at - sent_at[task.request["input"]["prompt"]] for task in kie.created
    ]
    reads = [float(task.status_reads) for task in kie.created]
    # When the bot first looked after the task was done, and the busiest second of reads.
    detection = [
        min((t for t in task.read_times if t >= task.done_at), default=task.done_at) - task.done_at
        for task in kie.created
    ]
    per_second: dict[int, int] = {}
    for task in kie.created:
        for moment in task.read_times:
            per_second[int(moment)] = per_second.get(int(moment), 0) + 1

    print(
        f"tasks {tasks} from {chats} chats over {spread:.0f} s, results by {results}, "
        f"clock {clock}, task length {durations[0]}–{durations[1]} s"
    )
    print(f"wall time {finished - started:.1f} s, upstream tasks created {len(kie.created)}")
    start = "callback" if results == "callback" else "completion"
    print(describe(f"{start} → album request", completion_to_album))
    print(describe("update → upstream task created", update_to_create))
    print(describe("status requests per task", reads, unit="req", scale=1.0))
    if results == "polling":
        print(describe("done → noticed by a status read", detection))
        print(f"{'most status requests in one second':<32} {max(per_second.values())}")
    telegram_calls = len([c for c in telegram.calls if c.method not in ("getMe", "setMyCommands")])
    print(f"Telegram calls per task          {telegram_calls / tasks:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--chats", type=int, default=25)
    parser.add_argument("--clock", choices=["production", "test"], default="production")
    parser.add_argument("--results", choices=["callback", "polling"], default="callback")
    parser.add_argument(
        "--spread", type=float, default=0.0, help="seconds to send the updates over"
    )
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    asyncio.run(
        bench(
            arguments.tasks,
            arguments.chats,
            arguments.clock,
            arguments.results,
            arguments.spread,
            arguments.seed,
        )
    )


if __name__ == "__main__":
    main()
