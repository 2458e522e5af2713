"""Inline queries and pre-checkout queries answered within a second, while the bot is busy.

Starts the loopback Telegram (flood limits on) and kie test servers and the real bot (its own
process, production clocks and pacing, results by callback). One user makes image sets in
a private chat, so that inline mode has earlier results to search; then, while a few hundred
`/imagine` from other chats are in flight and their albums queue under Telegram's limits,
the user types inline queries: query → `answerInlineQuery` at Telegram (target p99 ≤ 1 s),
and presses Pay under a Stars invoice: Pay → `answerPreCheckoutQuery` (target p99 ≤ 1 s; Telegram
waits 10 s at most). No query may create an upstream task.

    .venv/bin/python -m bench.inline
    .venv/bin/python -m bench.inline --queries 200 --busy 600
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.bot_process import start_bot, stop_bot
from bench.delivery import describe, percentile
from fakes.bot_under_test import BOT_TOKEN, PROVIDER_KEY
from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeChat, FakeTelegram, FakeUser

USER = FakeUser(30_000, "Ann", "en")
EARLIER_SETS = 20


async def bench(queries: int, busy: int, every: float) -> None:
    telegram = FakeTelegram(BOT_TOKEN)
    telegram.flood_limits = True
    kie = FakeKie(PROVIDER_KEY, scenario=Scenario(duration=1.0))
    await telegram.start()
    await kie.start()
    with tempfile.TemporaryDirectory() as folder:
        process = await start_bot(
            telegram,
            kie,
            Path(folder) / "bench.sqlite3",
            settings={"CHAT_DAILY_CREDITS": "100000", "STAR_PACKS": "100:50"},
        )
        try:
            own = telegram.private_chat(USER)
            for n in range(EARLIER_SETS):
                telegram.send_text(own, USER, f"/imagine a red fox number {n}")
            await telegram.wait_for(
                lambda: (
                    len([c for c in telegram.calls_of("sendMediaGroup", own.id) if c.ok])
                    >= EARLIER_SETS
                ),
                timeout=300,
            )
            await asyncio.sleep(1.0)  # the last album's file ids are noted just after it left
            others = [FakeUser(31_000 + i, f"user{i}", "en") for i in range(100)]
            for n in range(busy):
                user = others[n % len(others)]
                telegram.send_text(telegram.private_chat(user), user, f"/imagine busy {n}")
            invoice = await _invoice(telegram, own)
            telegram.complete_payments = False  # the answers are measured; no Stars move
            asked, checkouts = [], []
            for n in range(queries):
                asked.append(telegram.inline_query(USER, f"red fox number {n % EARLIER_SETS}"))
                if n % 5 == 0:
                    checkouts.append(telegram.checkout(own, USER, invoice))
                await asyncio.sleep(every)
            await telegram.wait_for(
                lambda: all(telegram.inline_answer_delay(q) is not None for q in asked),
                timeout=60,
            )
            await telegram.wait_for(
                lambda: all(telegram.checkout_answer_delay(q) is not None for q in checkouts),
                timeout=60,
            )
            delays = [telegram.inline_answer_delay(q) or 0.0 for q in asked]
            checkout_delays = [telegram.checkout_answer_delay(q) or 0.0 for q in checkouts]
            approved = sum((telegram.checkout_answer(q) or (False, None))[0] for q in checkouts)
            # A query's words never start a prompt of the sets made on purpose.
            made_by_queries = sum(
                1 for t in kie.created if t.request["input"]["prompt"].startswith("red fox")
            )
            matched = sum(len(telegram.inline_answer(q) or []) > 1 for q in asked)
        finally:
            await stop_bot(process)
    await telegram.stop()
    await kie.stop()

    print(
        f"production clocks and flood control; {queries} inline queries, one every "
        f"{every * 1000:.0f} ms, and {len(checkout_delays)} presses on Pay, while {busy} "
        f"/imagine from 100 other chats are in flight"
    )
    p99 = percentile(delays, 0.99)
    print(
        describe("   query → answerInlineQuery", delays),
        f"  target p99 ≤ 1000 ms: {'ok' if p99 <= 1.0 else 'MISSED'}",
    )
    print(f"   answers with an earlier set among them: {matched} of {queries}")
    p99 = percentile(checkout_delays, 0.99)
    print(
        describe("   Pay → answerPreCheckoutQuery", checkout_delays),
        f"  target p99 ≤ 1000 ms: {'ok' if p99 <= 1.0 else 'MISSED'}",
    )
    print(f"   checkouts approved: {approved} of {len(checkouts)}")
    print(f"   upstream tasks created by queries: {made_by_queries}   target 0")


async def _invoice(telegram: FakeTelegram, chat: FakeChat) -> int:
    """/buy and the first pack's button: the invoice's message id."""
    telegram.send_text(chat, USER, "/buy")
    menu = await telegram.wait_for(
        lambda: next(
            (
                c
                for c in telegram.calls_of("sendMessage", chat.id)
                if c.ok
                and (c.result.get("reply_markup") or {}).get("inline_keyboard")
                and c.json("reply_markup")["inline_keyboard"][0][0]["callback_data"].startswith(
                    "b:"
                )
            ),
            None,
        ),
        timeout=60,
    )
    button = menu.json("reply_markup")["inline_keyboard"][0][0]["callback_data"]
    telegram.press(chat, USER, menu.result["message_id"], button)
    [invoice] = await telegram.wait_for_call("sendInvoice", chat.id, timeout=60)
    message_id: int = invoice.result["message_id"]
    return message_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--busy", type=int, default=300, help="/imagine in flight meanwhile")
    parser.add_argument("--every", type=float, default=0.05, help="seconds between queries")
    arguments = parser.parse_args()
    asyncio.run(bench(arguments.queries, arguments.busy, arguments.every))


if __name__ == "__main__":
    main()
