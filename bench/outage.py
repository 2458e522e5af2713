"""A pool of one account in a bad minute: the account is out of credits (creates answer 402,
its balance 0) when N chats each send one /imagine at once, and OUTAGE seconds later it has
credits again. The bot runs as its own process (`bench.bot_process`: production clocks and
flood control, results by callback), so the account is checked every 10–15 s with a call
that costs nothing (its balance) and a request waits in line up to OUTAGE_WAIT (120 s)
before it is refunded; the Telegram test server does not enforce flood limits here.

    .venv/bin/python -m bench.outage                # shorter than OUTAGE_WAIT: all delivered
    .venv/bin/python -m bench.outage --outage 150   # longer: every request refunded

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
from bot.telegram.flood import MESSAGE_METHODS
from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeTelegram, FakeUser

# Production's clocks, which `bench.bot_process --clock production` keeps: the account checks
# (bot/engine/timing.py) and the outage wait (OUTAGE_WAIT, passed to the bot below).
ACCOUNT_CHECKS = (10.0, 15.0)
OUTAGE_WAIT = 120.0
# Telegram's overall pace as the bot's flood control has it: 27 a second after a burst of 3.
OVERALL_PACE = 27.0


def line(name: str, value: str, target: str) -> None:
    print(f"   {name:<46} {value:>14}   target {target}")


async def run_once(
    chats: int, outage: float, task_seconds: float, bot_log: str | None = None
) -> None:
    from fakes.bot_under_test import BOT_TOKEN

    telegram = FakeTelegram(BOT_TOKEN)
    kie = FakeKie("bench-key-0", scenario=Scenario(duration=task_seconds))
    kie.credits = 0  # out of credits from the start: creates answer 402, the balance 0
    await telegram.start()
    await kie.start()
    with tempfile.TemporaryDirectory() as folder:
        providers = Path(folder) / "providers.toml"
        providers.write_text(
            f'[[account]]\nname = "acct-0"\nprovider = "kie"\n'
            f'api_key = "{kie.api_key}"\nbase_url = "{kie.url}"\n'
        )
        database = Path(folder) / "bench.sqlite3"
        log = open(bot_log, "ab") if bot_log else None  # noqa: ASYNC230, SIM115
        process = await start_bot(
            telegram,
            kie,
            database,
            settings={
                "PROVIDERS_FILE": str(providers),
                "OUTAGE_WAIT": str(OUTAGE_WAIT),
                "CHAT_DAILY_CREDITS": "100",
            },
            clock="production",
            log=log,
        )
        users = [FakeUser(30_000 + i, f"user{i}", "en") for i in range(chats)]
        prompts = [f"o{i}" for i in range(chats)]
        started = time.time()
        for user, prompt in zip(users, prompts, strict=True):
            telegram.send_text(telegram.private_chat(user), user, f"/imagine {prompt}")

        check_times: list[float] = []  # when each balance check reached the account

        async def watch_checks() -> None:
            seen = kie.credit_checks
            while True:
                await asyncio.sleep(0.01)
                if kie.credit_checks > seen:
                    check_times.extend([time.time()] * (kie.credit_checks - seen))
                    seen = kie.credit_checks

        async def report_progress() -> None:
            while True:
                await asyncio.sleep(10)
                print(
                    f"  {time.time() - started:5.0f} s: {kie.create_attempts} creates asked, "
                    f"{len(kie.created)} made, {kie.credit_checks} balance checks, "
                    f"{sum(1 for c in telegram.calls_of('sendMediaGroup') if c.ok)} albums",
                    file=sys.stderr,
                )

        watcher = asyncio.create_task(watch_checks())
        progress = asyncio.create_task(report_progress())
        await asyncio.sleep(max(0.0, started + outage - time.time()))
        asked_while_out = kie.create_attempts
        checks_while_out = kie.credit_checks
        kie.credits = 1000  # the account answers well again
        restored = time.time()
        deadline = restored + OUTAGE_WAIT + 60
        while not settled(database, chats) and time.time() < deadline:  # noqa: ASYNC110 (the bot's database)
            await asyncio.sleep(0.2)
        timed_out = not settled(database, chats)
        if outage >= OUTAGE_WAIT:  # nothing left to do; see the check that puts it back
            back = [at for at in check_times if at >= restored]
            while not back and time.time() < deadline:
                await asyncio.sleep(0.2)
                back = [at for at in check_times if at >= restored]
        watcher.cancel()
        progress.cancel()
        await stop_bot(process)
        if log:
            log.close()
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT prompt, state, failure_kind FROM tasks").fetchall()
            ledger = dict(db.execute("SELECT kind, COUNT(*) FROM ledger GROUP BY kind").fetchall())
            refund_times = [
                at for (at,) in db.execute("SELECT created_at FROM ledger WHERE kind = 'refund'")
            ]
    await telegram.stop()
    await kie.stop()

    album_calls = [c for c in telegram.calls_of("sendMediaGroup") if c.ok]
    albums = Counter(c.json("media")[0]["caption"] for c in album_calls)
    lost = sum(1 for p in prompts if albums[p] == 0)
    duplicated = sum(n - 1 for n in albums.values() if n > 1)
    upstream = Counter(t.request["input"]["prompt"] for t in kie.created)
    created_twice = sum(n - 1 for n in upstream.values() if n > 1)
    refunded = ledger.get("refund", 0)
    failures = Counter(kind for _, state, kind in rows if state != "delivered")

    longer = outage >= OUTAGE_WAIT
    title = "longer than OUTAGE_WAIT" if longer else "shorter than OUTAGE_WAIT"
    print(
        f"{chats} /imagine at once from {chats} chats, one kie account out of credits for "
        f"{outage:.0f} s ({title}: {OUTAGE_WAIT:.0f} s), tasks of {task_seconds} s, "
        f"account checks every {ACCOUNT_CHECKS[0]:.0f}–{ACCOUNT_CHECKS[1]:.0f} s"
    )
    if timed_out:
        print(f"   NOT SETTLED {OUTAGE_WAIT + 60:.0f} s after the account answered again")
    line(
        "create requests sent while it was out",
        str(asked_while_out),
        "few (those on their way before its first 402 came back)",
    )
    expected_checks = outage / sum(ACCOUNT_CHECKS) * 2
    line(
        "balance checks while it was out",
        str(checks_while_out),
        f"≈ {expected_checks:.1f} + 1 (OUTAGE ÷ 12.5 s, and one when it began)",
    )
    check_after = [at - restored for at in check_times if at >= restored]
    line(
        "answering again → the check that saw it",
        f"{check_after[0]:.1f} s" if check_after else "none",
        f"≤ {ACCOUNT_CHECKS[1]:.0f} s",
    )
    if not longer:
        first_create = min((t.created_at for t in kie.created), default=None)
        line(
            "answering again → first task created upstream",
            f"{first_create - restored:.1f} s" if first_create else "none",
            f"≤ {ACCOUNT_CHECKS[1]:.0f} s",
        )
        bound = ACCOUNT_CHECKS[1] + task_seconds
        if album_calls:
            first = min(c.at for c in album_calls) - restored
            last_at = max(c.at for c in album_calls)
            paced = sum(
                1
                for c in telegram.calls
                if c.method in MESSAGE_METHODS and restored <= c.at <= last_at
            )
            line(
                "answering again → first album request",
                f"{first:.1f} s",
                f"≤ {bound:.1f} s ({ACCOUNT_CHECKS[1]:.0f} s + a task; it was 61 s)",
            )
            line(
                "answering again → last album request",
                f"{last_at - restored:.1f} s",
                f"≤ {bound + paced / OVERALL_PACE:.1f} s (+ {paced} calls ÷ {OVERALL_PACE:.0f}/s)",
            )
        else:
            line("answering again → first album request", "none", f"≤ {bound:.1f} s")
        line("requests refunded", str(refunded), "0")
        line("lost / duplicated albums", f"{lost} / {duplicated}", "0 / 0")
    else:
        line("requests refunded", str(refunded), str(chats))
        if refund_times:
            line(
                "/imagine → refunds",
                f"{min(refund_times) - started:.0f}–{max(refund_times) - started:.0f} s",
                f"≈ {OUTAGE_WAIT:.0f} s (OUTAGE_WAIT)",
            )
        line("tasks created upstream", str(len(kie.created)), "0")
        line("albums", str(len(album_calls)), "0")
        line("why not delivered", " ".join(f"{k}:{n}" for k, n in failures.items()) or "-", "-")
    line("tasks created upstream twice", str(created_twice), "0")
    line(
        "ledger: reserved / committed / refunded",
        f"{ledger.get('reserve', 0)} / {ledger.get('commit', 0)} / {refunded}",
        f"{chats} / 0 / {chats}" if longer else f"{chats} / {chats} / 0",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument(
        "--outage", type=float, default=30.0, help="seconds the account is out of credits"
    )
    parser.add_argument("--task-seconds", type=float, default=5.0)
    parser.add_argument("--bot-log", help="append the bot's own log to this file")
    arguments = parser.parse_args()
    asyncio.run(
        run_once(arguments.chats, arguments.outage, arguments.task_seconds, arguments.bot_log)
    )


if __name__ == "__main__":
    main()
