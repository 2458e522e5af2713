"""Telegram Stars: /buy → invoice → pre-checkout → payment → credits, exactly once; refunds;
what a user and an operator see."""

from __future__ import annotations

import logging
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fakes.kie import FakeKie
from fakes.postgres import run_sql
from fakes.telegram import Call, FakeChat, FakeTelegram, FakeUser
from tests.conftest import FakeClock, RunningBot, StartBot, eventually
from tests.test_crash import Killable

ANN = FakeUser(1001, "Ann", "en")
BOB = FakeUser(1002, "Bob", "ru")
OPERATOR = FakeUser(4242, "Operator", "en")
PACKS = "100:50,500:200"
SIGNING_KEY = "payload-signing-key-5c1d"


async def texts_in(telegram: FakeTelegram, chat: FakeChat, count: int) -> list[str]:
    calls = await telegram.wait_for_call("sendMessage", chat.id, count=count)
    return [c.result["text"] for c in calls]


async def buy(
    telegram: FakeTelegram,
    chat: FakeChat,
    user: FakeUser,
    pack: int = 0,
    *,
    thread_id: int | None = None,
) -> Call:
    """/buy, press the pack's button, and return the invoice the bot sent."""
    menus = len(telegram.calls_of("sendMessage", chat.id))
    invoices = len(telegram.calls_of("sendInvoice", chat.id))
    telegram.send_text(chat, user, "/buy", thread_id=thread_id)
    calls = await telegram.wait_for_call("sendMessage", chat.id, count=menus + 1)
    menu = calls[-1]
    button = menu.json("reply_markup")["inline_keyboard"][pack][0]
    query = telegram.press(chat, user, menu.result["message_id"], button["callback_data"])
    await telegram.wait_for_answer(query)
    [*_, invoice] = await telegram.wait_for_call("sendInvoice", chat.id, count=invoices + 1)
    return invoice


async def checkout(
    telegram: FakeTelegram, chat: FakeChat, user: FakeUser, invoice: Call
) -> tuple[bool, str | None]:
    query = telegram.checkout(chat, user, invoice.result["message_id"])
    answer = await telegram.wait_for(lambda: telegram.checkout_answer(query))
    assert isinstance(answer, tuple)
    return answer


async def text_starting(telegram: FakeTelegram, chat: FakeChat, start: str) -> str:
    """The bot's latest message in the chat that starts with `start`, once there is one."""

    def found() -> str | None:
        texts = [c.result["text"] for c in telegram.calls_of("sendMessage", chat.id) if c.ok]
        return next((t for t in reversed(texts) if t.startswith(start)), None)

    text = await telegram.wait_for(found)
    assert isinstance(text, str)
    return text


def purchases(bot: RunningBot) -> list[tuple[int, int, str]]:
    return [
        (r["chat_id"], r["amount"], r["charge_id"])
        for r in bot.rows("SELECT * FROM ledger WHERE kind = 'purchase' ORDER BY id")
    ]


async def test_buying_in_a_private_chat(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(star_packs=PACKS, chat_daily_credits=0)
    chat = telegram.private_chat(ANN)
    invoice = await buy(telegram, chat, ANN)

    # With the shop open, the menu offers /buy, and /paysupport and /terms as Telegram asks.
    assert [c["command"] for c in telegram.commands[("all_private_chats", "")]][-4:] == [
        "settings",
        "help",
        "paysupport",
        "terms",
    ]
    assert "buy" in [c["command"] for c in telegram.commands[("all_private_chats", "")]]
    [menu] = await texts_in(telegram, chat, 1)
    assert menu == (
        "⭐ Buy credits for yourself, with Telegram Stars.\n"
        "Purchased credits never expire; /imagine costs 5.\n\n"
        "• 100 credits ≈ 20 image sets: 50 ⭐\n"
        "• 500 credits ≈ 100 image sets: 200 ⭐"
    )
    # Stars: currency XTR, no provider token, one price; the payload well under 128 bytes.
    assert invoice.params["currency"] == "XTR"
    assert not invoice.params.get("provider_token")
    assert invoice.json("prices") == [{"label": "100 credits", "amount": 50}]
    assert invoice.params["title"] == "100 credits"
    assert invoice.params["description"] == (
        "100 credits for Grok Imagine, ≈ 20 image sets. They never expire."
    )
    assert len(invoice.params["payload"].encode()) <= 128

    assert await checkout(telegram, chat, ANN, invoice) == (True, None)
    [_, receipt] = await texts_in(telegram, chat, 2)
    assert receipt == (
        "⭐ Thank you! 100 credits added for 50 ⭐.\n"
        "Your credits now: 100 (100 purchased, 0 granted, 0 left of today's)."
    )
    [(chat_id, amount, charge_id)] = purchases(bot)
    assert (chat_id, amount) == (ANN.id, 100)
    assert charge_id in telegram.payments

    # Spent like any credits: the day's allowance (none here) first, then these.
    telegram.send_text(chat, ANN, "/imagine paid in stars")
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    telegram.send_text(chat, ANN, "/quota")
    quota = await text_starting(telegram, chat, "💳")
    assert "Purchased: 95\n" in quota
    assert "Bought by" not in quota  # a private chat: the user's own


async def test_buying_for_a_group_pool_in_a_forum_topic(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(star_packs=PACKS, chat_daily_credits=0)
    group = telegram.group_chat(-100500, "Foxes & Friends", forum=True)
    invoice = await buy(telegram, group, BOB, pack=1, thread_id=7)
    assert invoice.params["message_thread_id"] == "7"
    assert invoice.params["description"] == (
        "500 кредитов в общий запас «Foxes & Friends», ≈ 100 наборов картинок. Не сгорают."
    )
    assert await checkout(telegram, group, BOB, invoice) == (True, None)

    [_, receipt] = await texts_in(telegram, group, 2)
    assert receipt.startswith("⭐ Bob добавляет 500 кредитов в общий запас группы за 200 ⭐.")
    receipt_call = telegram.calls_of("sendMessage", group.id)[-1]
    assert receipt_call.params["message_thread_id"] == "7"
    assert [(c, a) for c, a, _ in purchases(bot)] == [(group.id, 500)]

    # Anyone in the group spends the pool; /quota says who bought it.
    telegram.send_text(group, ANN, "/imagine from the pool", thread_id=7)
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    telegram.send_text(group, ANN, "/quota", thread_id=7)
    quota = await text_starting(telegram, group, "💳")
    assert "Purchased: 495\nBought by: Bob (500)\n" in quota


async def test_the_same_payment_delivered_twice_adds_its_credits_once(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(star_packs=PACKS)
    chat = telegram.private_chat(ANN)
    assert await checkout(telegram, chat, ANN, await buy(telegram, chat, ANN)) == (True, None)
    await texts_in(telegram, chat, 2)  # the menu, the receipt
    [charge_id] = telegram.payments
    telegram.deliver_payment(charge_id)
    telegram.send_text(chat, ANN, "/quota")  # answered after the repeat was handled
    await texts_in(telegram, chat, 3)
    assert len(purchases(bot)) == 1
    assert len(bot.rows("SELECT * FROM payments")) == 1
    receipts = [t for t in await texts_in(telegram, chat, 3) if "credits added" in t]
    assert len(receipts) == 1


async def test_a_payment_lost_to_a_kill_is_found_and_granted_at_restart(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, bot_database: Path | str
) -> None:
    # Telegram handed the payment over (and counts it delivered), and the bot died before
    # it recorded it: the next start finds it among the bot's Star transactions.
    database = bot_database
    killable = Killable(telegram, kie, database, STAR_PACKS=PACKS)
    await killable.start()
    chat = telegram.private_chat(ANN)
    invoice = await buy(telegram, chat, ANN)
    # Behind more than ten pages of older transactions (they come oldest first).
    telegram.star_transactions += [
        {"id": f"old{n}", "amount": 1, "date": 1_700_000_000 + n, "source": {"type": "fragment"}}
        for n in range(1050)
    ]

    def die_with_the_payment(batch: list[dict[str, object]]) -> None:
        if any("successful_payment" in (u.get("message") or {}) for u in batch):  # type: ignore[operator]
            assert killable.process is not None
            os.kill(killable.process.pid, signal.SIGKILL)
            telegram.confirm(batch)

    telegram.before_answering_updates = die_with_the_payment
    assert await checkout(telegram, chat, ANN, invoice) == (True, None)
    assert killable.process is not None
    await killable.process.wait()
    telegram.before_answering_updates = None
    assert _rows(database, "SELECT * FROM payments") == []  # never recorded

    bot = await start_bot(database=database, star_packs=PACKS)
    [_, receipt] = await texts_in(telegram, chat, 2)
    assert receipt.startswith("⭐ Thank you! 100 credits added for 50 ⭐.")
    assert [(c, a) for c, a, _ in purchases(bot)] == [(ANN.id, 100)]
    # A second start finds it recorded: nothing added, no second receipt.
    await bot.stop()
    again = await start_bot(database=database, star_packs=PACKS)
    telegram.send_text(chat, ANN, "/quota")
    await texts_in(telegram, chat, 3)
    assert len(purchases(again)) == 1
    assert sum("credits added" in t for t in await texts_in(telegram, chat, 3)) == 1
    # The second look started a page before where the first ended, not at the oldest.
    offsets = [int(c.params.get("offset") or 0) for c in telegram.calls_of("getStarTransactions")]
    assert offsets == [0, *range(0, 1100, 100), 951, 1051]  # the killed start saw none


async def test_a_kill_while_the_receipt_is_on_its_way_sends_it_at_restart(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, bot_database: Path | str
) -> None:
    database = bot_database
    killable = Killable(telegram, kie, database, STAR_PACKS=PACKS)
    await killable.start()
    chat = telegram.private_chat(ANN)
    invoice = await buy(telegram, chat, ANN)
    telegram.hold("sendMessage", chat.id)  # the receipt: recorded first, then sent
    assert await checkout(telegram, chat, ANN, invoice) == (True, None)
    await eventually(lambda: _rows(database, "SELECT * FROM payments"))
    await telegram.wait_for(lambda: telegram.held)  # on its way
    await killable.kill()
    telegram.release()  # its sender is gone: it never arrives

    bot = await start_bot(database=database, star_packs=PACKS)
    [_, receipt] = await texts_in(telegram, chat, 2)
    assert receipt.startswith("⭐ Thank you! 100 credits added")
    assert len(purchases(bot)) == 1
    sent = telegram.calls_of("sendMessage", chat.id)[-1].result["message_id"]
    await eventually(lambda: bot.rows("SELECT receipt_message_id FROM payments")[0][0] == sent)


@pytest.mark.parametrize("case", ["forged", "stale", "someone else's", "pack removed"])
async def test_a_checkout_the_bot_cannot_honour_is_refused_with_a_reason(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, case: str
) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp())
    bot = await start_bot(star_packs=PACKS, clock=clock, payment_signing_key=SIGNING_KEY)
    chat = telegram.private_chat(ANN)
    invoice = await buy(telegram, chat, ANN)
    payer, expected = ANN, "This invoice has expired. Use /buy for a new one."
    if case == "forged":
        stored = telegram.invoice_of(chat, invoice.result["message_id"])
        credits, stars = 500, 50  # more credits for the same Stars, signature kept
        stored["payload"] = stored["payload"].replace("p1.100.50.", f"p1.{credits}.{stars}.", 1)
        expected = "This invoice was not made by this bot. Use /buy for a new one."
    elif case == "stale":
        clock.advance(24 * 3600 + 1)
    elif case == "someone else's":
        payer = FakeUser(1003, "Cid", "en")
        expected = "This invoice was made for someone else. Use /buy for your own."
    else:
        await bot.stop()
        await start_bot(star_packs="100:60", clock=clock, payment_signing_key=SIGNING_KEY)
        expected = "This pack is no longer on sale at this price. /buy shows what is."
    assert await checkout(telegram, chat, payer, invoice) == (False, expected)
    assert telegram.payments == {}


async def test_refund_once_then_twice_after_some_credits_were_spent(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(star_packs=PACKS, chat_daily_credits=0, admin_user_ids=str(OPERATOR.id))
    chat = telegram.private_chat(ANN)
    admin = telegram.private_chat(OPERATOR)
    assert await checkout(telegram, chat, ANN, await buy(telegram, chat, ANN)) == (True, None)
    await texts_in(telegram, chat, 2)
    [charge_id] = telegram.payments
    for n in range(2):  # 10 of the 100 credits spent
        telegram.send_text(chat, ANN, f"/imagine spent {n}")
        await bot.wait_until_settled(count=n + 1)

    telegram.send_text(admin, OPERATOR, f"/refund {charge_id}")
    [refunded] = await texts_in(telegram, admin, 1)
    assert refunded == (
        f"✅ Refunded 50 ⭐ to Ann. Took back 90 of the payment's 100 credits from chat "
        f"{ANN.id}: what was left of them unspent."
    )
    assert telegram.payments[charge_id].refunded
    notice = await text_starting(telegram, chat, "⭐ A payment")
    assert (
        notice
        == "⭐ A payment of 50 ⭐ by Ann was refunded; 90 of its 100 credits were taken back."
    )
    kinds = [r["kind"] for r in bot.rows("SELECT kind FROM ledger WHERE charge_id IS NOT NULL")]
    assert kinds == ["purchase", "unpurchase"]

    telegram.send_text(admin, OPERATOR, f"/refund {charge_id}")
    second = (await texts_in(telegram, admin, 2))[-1]
    assert second == "That payment was refunded before; 90 credits were taken back then."
    assert len(telegram.calls_of("refundStarPayment")) == 1
    telegram.send_text(chat, ANN, "/imagine after the refund")
    refusal = await text_starting(telegram, chat, "💳 Not enough")
    assert "0 purchased" in refusal
    assert refusal.endswith("Buy more with /buy.")

    telegram.send_text(admin, OPERATOR, "/refund nope")
    assert (await texts_in(telegram, admin, 3))[-1] == "No payment with that charge id."


async def test_refund_of_a_payment_whose_credits_are_all_spent_takes_nothing(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(star_packs="5:1", chat_daily_credits=0, admin_user_ids=str(OPERATOR.id))
    chat = telegram.private_chat(ANN)
    admin = telegram.private_chat(OPERATOR)
    assert await checkout(telegram, chat, ANN, await buy(telegram, chat, ANN)) == (True, None)
    await texts_in(telegram, chat, 2)
    telegram.send_text(chat, ANN, "/imagine the whole pack")
    await bot.wait_until_settled()
    [charge_id] = telegram.payments
    telegram.send_text(admin, OPERATOR, f"/refund {charge_id}")
    [answer] = await texts_in(telegram, admin, 1)
    assert "Took back 0 of the payment's 5 credits" in answer
    assert bot.rows("SELECT amount FROM ledger WHERE kind = 'unpurchase'")[0]["amount"] == 0


async def test_stats_show_stars_beside_tasks_and_credits(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    await start_bot(star_packs=PACKS, admin_user_ids=str(OPERATOR.id))
    chat = telegram.private_chat(ANN)
    admin = telegram.private_chat(OPERATOR)
    for pack in (0, 1):
        assert await checkout(telegram, chat, ANN, await buy(telegram, chat, ANN, pack)) == (
            True,
            None,
        )
    await texts_in(telegram, chat, 4)
    telegram.send_text(admin, OPERATOR, "/stats")
    [stats] = await texts_in(telegram, admin, 1)
    today = datetime.now(UTC).date().isoformat()
    assert "day         tasks  failed  credits  stars" in stats
    assert f"{today}      0       0        0    250" in stats


async def test_no_shop_without_packs_and_the_texts_telegram_requires(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    await start_bot(admin_user_ids=str(OPERATOR.id), terms_text="Be <nice>.")
    chat = telegram.private_chat(BOB)
    operator_chat = telegram.private_chat(OPERATOR)
    answers: list[str] = []
    for command in ("/buy", "/terms", "/paysupport"):
        telegram.send_text(chat, BOB, command)
        answers.append((await texts_in(telegram, chat, len(answers) + 1))[-1])
    closed, terms, support = answers
    assert closed == "В этом боте кредиты не продаются. Их может подарить оператор бота."
    assert terms == "Be <nice>."  # the operator's own text, escaped on the way
    assert support.startswith("💬 Помощь с оплатой\n")
    telegram.send_text(chat, BOB, "/paysupport my <b>stars</b> vanished")
    sent = (await texts_in(telegram, chat, 4))[-1]
    assert sent == "✅ Отправлено оператору бота. Ответ придёт сюда."
    [question] = await texts_in(telegram, operator_chat, 1)
    assert question.startswith(f"💬 Payment support from Bob (id {BOB.id}, chat {BOB.id}):\n")
    assert "my <b>stars</b> vanished" in question  # shown as typed, not as markup
    menus = telegram.commands
    assert all("buy" not in [c["command"] for c in commands] for commands in menus.values())


async def test_the_menu_offers_buy_when_the_shop_is_open_and_the_signing_key_is_never_logged(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await start_bot(star_packs=PACKS, payment_signing_key=SIGNING_KEY)
    assert all("buy" in [c["command"] for c in commands] for commands in telegram.commands.values())
    chat = telegram.private_chat(ANN)
    invoice = await buy(telegram, chat, ANN)
    assert await checkout(telegram, chat, ANN, invoice) == (True, None)
    await texts_in(telegram, chat, 2)
    # Everything logged, PTB's debug lines of every call and update included: the key that
    # signs payloads is not there (a payload and its signature may be: they prove nothing
    # about other payloads, and Telegram shows them to no one).
    assert caplog.records
    for record in caplog.records:
        assert SIGNING_KEY not in record.getMessage() + (record.exc_text or "")


def _rows(database: Path | str, sql: str) -> list[tuple[object, ...]]:
    try:
        return run_sql(database, sql)
    except Exception:
        return []  # not made yet
