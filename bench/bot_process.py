"""The bot as its own process for the benchmarks, as in production: its event loop and its
CPU are not shared with the test servers, whose work would otherwise count as the bot's.

`python -m bench.bot_process [--clock test] [--flood-control off]` is `python -m bot` (the
settings come from the environment) with the clocks and Telegram pacing the benchmark
asks for. `start_bot` launches it against the test servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bot.app import run, run_event_loop
from bot.settings import Settings
from bot.telegram.flood import FloodLimits

# Only the parent imports the test servers: the bot's process stays the bot alone, so the
# memory it reports is the bot's.
if TYPE_CHECKING:
    from fakes.kie import FakeKie
    from fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent

# Loose enough never to wait: 1,000 calls a second, overall and per chat.
NO_FLOOD_CONTROL = FloodLimits(overall=(1000, 1), group=(1000, 1), private_chat=(1000, 1))


async def start_bot(
    telegram: FakeTelegram,
    kie: FakeKie,
    database: Path,
    *,
    settings: dict[str, str],
    results: str = "callback",
    clock: str = "production",
    flood_control: bool = True,
    log: IO[bytes] | None = None,
) -> asyncio.subprocess.Process:
    """Start the bot against the test servers and wait until it polls for updates."""
    from fakes.bot_under_test import BOT_TOKEN, PROVIDER_KEY, free_port

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "PROVIDER_"))},
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_URL": telegram.url,
        "PROVIDER_API_KEY": PROVIDER_KEY,
        "PROVIDER_BASE_URL": kie.url,
        "DATABASE_PATH": str(database),
        **settings,
    }
    port = free_port()  # the bot always serves /healthz and /metrics
    env |= {"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port)}
    if results == "callback":
        env["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    arguments = ["--clock", clock, "--flood-control", "production" if flood_control else "off"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bot_process",
        *arguments,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log or asyncio.subprocess.DEVNULL,
    )
    await telegram.wait_for(lambda: telegram.polls > 0, timeout=60)
    return process


def settled(database: Path, count: int) -> bool:
    """At least `count` tasks in the bot's SQLite database, every one delivered or reported."""
    with sqlite3.connect(database) as db:
        (open_tasks,) = db.execute(
            "SELECT COUNT(*) FROM tasks WHERE state NOT IN ('delivered', 'reported')"
        ).fetchone()
        (tasks,) = db.execute("SELECT COUNT(*) FROM tasks").fetchone()
    return bool(tasks >= count and open_tasks == 0)


async def stop_bot(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clock", choices=["production", "test"], default="production")
    parser.add_argument("--flood-control", choices=["production", "off"], default="production")
    arguments = parser.parse_args()
    settings = Settings()
    timing = None  # production's clocks, as `python -m bot` has them
    if arguments.clock == "test":
        from fakes.bot_under_test import FAST

        timing = replace(FAST, poll=replace(FAST.poll, timeout=120))
    limits = None if arguments.flood_control == "production" else NO_FLOOD_CONTROL

    async def serve() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await run(settings, stop=stop, timing=timing, flood_limits=limits)

    run_event_loop(serve())


if __name__ == "__main__":
    main()
