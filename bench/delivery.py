"""How fast a finished upstream task becomes an album in the chat, by callback or polling.

Starts the loopback Telegram and kie test servers and the real bot (its own process), sends
`/imagine` from several chats at once, and prints, per task:
- completion → album: from the moment the upstream task is done (polling mode) or from its
  callback (callback mode) to the album request reaching the Telegram server;
- update → upstream task: from the update being available to the task existing upstream;
- status requests per task.

    .venv/bin/python -m bench.delivery                      # production clocks, tasks of 5–15 s
    .venv/bin/python -m bench.delivery --results polling
    .venv/bin/python -m bench.delivery --clock test --tasks 200
    .venv/bin/python -m bench.delivery --tasks 200 --chats 200 --in-flight 200 --flood-control off

`--flood-control off` takes the bot's own Telegram pacing out of the way (the test Telegram
never enforces flood limits here), so the figures are the engine's own latency.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.bot_process import start_bot, stop_bot
from fakes.bot_under_test import BOT_TOKEN, PROVIDER_KEY
from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeTelegram, FakeUser


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def describe(name: str, values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    scaled = [v * scale for v in values]
    return (
        f"{name:<32} median {statistics.median(scaled):8.1f} {unit}   "
        f"p99 {percentile(scaled, 0.99):8.1f} {unit}   max {max(scaled):8.1f} {unit}"
    )


def most_at_once(kie: FakeKie) -> int:
    """The most upstream tasks running at the same moment."""
    events = sorted(
        [(task.created_at, 1) for task in kie.created]
        + [(task.done_at, -1) for task in kie.created]
    )
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


async def bench(
    tasks: int,
    chats: int,
    clock: str,
    results: str,
    spread: float,
    seed: int,
    in_flight: int,
    flood_control: bool,
) -> None:
    rng = random.Random(seed)
    durations = (5.0, 15.0) if clock == "production" else (0.3, 1.0)

    telegram = FakeTelegram(BOT_TOKEN)
    kie = FakeKie(PROVIDER_KEY)
    await telegram.start()
    await kie.start()
    with tempfile.TemporaryDirectory() as folder:
        process = await start_bot(
            telegram,
            kie,
            Path(folder) / "bench.sqlite3",
            settings={
                "MAX_CONCURRENT_TASKS": str(in_flight),
                "MAX_TASKS_PER_HOUR": str(max(500, tasks)),
                "CHAT_DAILY_CREDITS": str(10 * tasks),
            },
            results=results,
            clock=clock,
            flood_control=flood_control,
        )

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
        await stop_bot(process)

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
        f"clock {clock}, task length {durations[0]}–{durations[1]} s, at most {in_flight} "
        f"in flight, bot's flood control {'on' if flood_control else 'off'}"
    )
    print(f"{'most tasks in flight at once':<32} {most_at_once(kie)}")
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
    parser.add_argument("--in-flight", type=int, default=50, help="MAX_CONCURRENT_TASKS")
    parser.add_argument("--flood-control", choices=["production", "off"], default="production")
    arguments = parser.parse_args()
    asyncio.run(
        bench(
            arguments.tasks,
            arguments.chats,
            arguments.clock,
            arguments.results,
            arguments.spread,
            arguments.seed,
            arguments.in_flight,
            arguments.flood_control == "production",
        )
    )


if __name__ == "__main__":
    main()
