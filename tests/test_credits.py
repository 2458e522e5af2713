"""Credits: reserved with the task, committed on delivery, refunded exactly once on failure."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime

from bot.core.lifecycle import PollSchedule
from bot.core.quota import utc_day
from fakes.kie import HELD, FakeKie, Scenario
from fakes.telegram import FakeChat, FakeTelegram, FakeUser
from tests.conftest import FAST, FakeClock, RunningBot, StartBot, eventually, public_endpoint

ANN = FakeUser(1001, "Ann", "en")
BOB = FakeUser(1002, "Bob", "en")
OPERATOR = FakeUser(4242, "Operator", "en")


def ledger(bot: RunningBot, chat_id: int) -> list[tuple[str, int, int | None]]:
    return [
        (row["kind"], row["amount"], row["task_id"])
        for row in bot.rows("SELECT * FROM ledger WHERE chat_id = ? ORDER BY id", (chat_id,))
    ]


def kinds(bot: RunningBot, chat_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind, _, _ in ledger(bot, chat_id):
        counts[kind] = counts.get(kind, 0) + 1
    return counts


async def replies(telegram: FakeTelegram, chat: FakeChat, count: int) -> list[str]:
    """The texts of the bot's first `count` messages in the chat."""
    calls = await telegram.wait_for_call("sendMessage", chat.id, count=count)
    return [c.result["text"] for c in calls]


async def test_hundred_concurrent_requests_with_fifty_credits_make_ten_tasks(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = HELD  # still running when we count
    bot = await start_bot(chat_daily_credits=50)
    chat = telegram.private_chat(ANN)
    for number in range(100):  # all waiting before the bot's next getUpdates
        telegram.send_text(chat, ANN, f"/imagine one of a hundred {number}")
    # 10 status messages and 90 refusals
    sent = await telegram.wait_for_call("sendMessage", chat.id, count=100)
    refusals = [c for c in sent if c.result["text"].startswith("💳 Not enough credits")]
    await eventually(lambda: len(kie.created) == 10)
    assert len(refusals) == 90
    assert len(bot.tasks()) == 10
    assert kinds(bot, chat.id) == {"reserve": 10}
    assert sum(amount for _, amount, _ in ledger(bot, chat.id)) == 50
    assert refusals[0].result["text"] == (
        "💳 Not enough credits: /imagine costs 5, and this chat has 0 left "
        "(0 of today's 50, 0 granted, 0 purchased). "
        f"Daily credits renew in {refusals[0].result['text'].split('renew in ')[1]}"
    )


async def test_a_failure_storm_refunds_each_task_exactly_once(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # Failures reported by repeated callbacks while the polling net also looks: every path
    # that can record a failure races the others.
    kie.scenario = Scenario(outcome="fail", duration=0.4, callback_repeats=3, fail_msg="boom")
    net = PollSchedule(first=0.4, fast=0.05, fast_until=5, medium=0.1, medium_until=10, slow=1)
    bot = await start_bot(timing=replace(FAST, callback_net=net), **public_endpoint())
    chat = telegram.private_chat(ANN)
    for number in range(20):
        telegram.send_text(chat, ANN, f"/imagine doomed {number}")
    tasks = await bot.wait_until_settled(count=20)
    await eventually(lambda: len(kie.callbacks) == 60)
    assert {t["state"] for t in tasks} == {"reported"}
    assert kinds(bot, chat.id) == {"reserve": 20, "refund": 20}
    refunded = [task_id or 0 for kind, _, task_id in ledger(bot, chat.id) if kind == "refund"]
    assert sorted(refunded) == [t["id"] for t in tasks]
    # All credits are back: the next 20 requests fit in today's 100 again.
    balance = await quota_text(telegram, chat, ANN)
    assert "Today: 100 of 100 left" in balance


async def quota_text(telegram: FakeTelegram, chat: FakeChat, user: FakeUser) -> str:
    before = len(telegram.calls_of("sendMessage", chat.id))
    telegram.send_text(chat, user, "/quota")
    calls = await telegram.wait_for_call("sendMessage", chat.id, count=before + 1)
    text: str = calls[-1].result["text"]
    return text


async def test_delivered_tasks_are_committed_and_the_balance_shows_it(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(chat_daily_credits=12)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine first")
    await bot.wait_until_settled(count=1)
    telegram.send_text(chat, ANN, "/imagine second")
    await bot.wait_until_settled(count=2)
    assert [k for k, _, _ in ledger(bot, chat.id)] == ["reserve", "commit", "reserve", "commit"]
    text = await quota_text(telegram, chat, ANN)
    assert text.startswith("💳 Credits in this chat\nToday: 2 of 12 left\nGranted: 0\n")
    assert "/imagine costs 5." in text
    telegram.send_text(chat, ANN, "/imagine third")
    refusal = await telegram.wait_for(
        lambda: [
            c for c in telegram.calls_of("sendMessage", chat.id) if "Not enough" in c.params["text"]
        ]
    )
    assert "this chat has 2 left" in refusal[0].params["text"]
    assert len(kie.created) == 2


async def test_daily_credits_renew_at_the_utc_boundary(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    clock = FakeClock(datetime(2026, 11, 21, 23, 58, 30, tzinfo=UTC).timestamp())
    bot = await start_bot(clock=clock, chat_daily_credits=5)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine before midnight")
    await bot.wait_until_settled(count=1)
    telegram.send_text(chat, ANN, "/imagine one more before midnight")
    refusal = await telegram.wait_for(
        lambda: [
            c for c in telegram.calls_of("sendMessage", chat.id) if "Not enough" in c.params["text"]
        ]
    )
    assert refusal[0].params["text"].endswith("Daily credits renew in 2 min (00:00 UTC).")

    clock.advance(120)  # 00:00:30 on the 22nd
    telegram.send_text(chat, ANN, "/imagine after midnight")
    tasks = await bot.wait_until_settled(count=2)
    assert tasks[1]["prompt"] == "after midnight"
    days = [row["day"] for row in bot.rows("SELECT day FROM ledger WHERE kind = 'reserve'")]
    assert days == ["2026-11-21", "2026-11-22"]


async def test_operator_grants_credits_that_outlast_the_day(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    clock = FakeClock(datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp())
    bot = await start_bot(clock=clock, chat_daily_credits=5, admin_user_ids=str(OPERATOR.id))
    chat = telegram.private_chat(ANN)
    admin_chat = telegram.private_chat(OPERATOR)
    telegram.send_text(admin_chat, OPERATOR, f"/grant {chat.id} 7")
    [granted] = await replies(telegram, admin_chat, 1)
    assert granted == f"✅ Granted 7 credits to chat {chat.id}. Its granted credits: 7."

    telegram.send_text(chat, ANN, "/imagine paid by the day")
    await bot.wait_until_settled(count=1)
    telegram.send_text(chat, ANN, "/imagine paid by the grant")
    await bot.wait_until_settled(count=2)
    reserves = bot.rows("SELECT amount, from_daily FROM ledger WHERE kind = 'reserve' ORDER BY id")
    assert [(r["amount"], r["from_daily"]) for r in reserves] == [(5, 5), (5, 0)]

    clock.advance(24 * 3600)  # the next day: a fresh allowance, and the grant's rest
    text = await quota_text(telegram, chat, ANN)
    assert "Today: 5 of 5 left\nGranted: 2\n" in text


async def test_operator_commands_do_not_exist_for_anyone_else(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(admin_user_ids=str(OPERATOR.id))
    chat = telegram.private_chat(ANN)
    for command in ("/grant here 1000", "/setquota here 100000", "/stats", "/balance"):
        telegram.send_text(chat, ANN, command)
    telegram.send_text(chat, ANN, "/help")  # answered, so everything before it was handled
    [only] = await replies(telegram, chat, 1)
    assert only.startswith("Grok Imagine in Telegram")
    await asyncio.sleep(0.2)
    assert len(telegram.calls_of("sendMessage", chat.id)) == 1
    assert ledger(bot, chat.id) == []
    assert bot.rows("SELECT * FROM chat_settings") == []


async def test_operator_sets_quota_reads_stats_and_balance(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(admin_user_ids=f"{OPERATOR.id}, 1")
    admin_chat = telegram.private_chat(OPERATOR)
    group = telegram.group_chat(-100900)
    telegram.send_text(group, OPERATOR, "/setquota here 15")
    await telegram.wait_for_call("sendMessage", group.id)
    telegram.send_text(group, ANN, "/imagine counted")
    await bot.wait_until_settled(count=1)
    kie.scenario = Scenario(outcome="fail")
    telegram.send_text(group, ANN, "/imagine failed")
    await bot.wait_until_settled(count=2)
    answers = []
    for number, command in enumerate(
        ("/stats", "/balance", "/grant nowhere 5", "/setquota here -1"), start=1
    ):
        telegram.send_text(admin_chat, OPERATOR, command)
        answers.append((await replies(telegram, admin_chat, number))[-1])
    stats, balance, bad_grant, bad_quota = answers
    set_quota = telegram.calls_of("sendMessage", group.id)[0].result["text"]
    assert set_quota == f"✅ Chat {group.id} now gets 15 credits a day."
    today = datetime.now(UTC).date().isoformat()
    assert f"{today}      2       1        5" in stats
    assert f"{group.id:>15}      2        5" in stats
    assert balance == "🏦 Upstream accounts\n🟢 kie (kie): 1000 credits · in rotation, 0 running"
    assert "account  tasks  failed\nkie          2       1" in stats
    assert bad_grant.startswith("Usage: /grant <chat id|here> <credits>")
    assert bad_quota.startswith("Usage: /setquota")
    text = await quota_text(telegram, group, ANN)
    assert "Today: 10 of 15 left" in text


async def test_per_member_cap_in_groups(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(group_user_daily_credits=10)
    group = telegram.group_chat(-100901)
    for number in range(3):
        telegram.send_text(group, ANN, f"/imagine ann {number}")
        await telegram.wait_for_call("sendMessage", group.id, count=number + 1)
    telegram.send_text(group, BOB, "/imagine bob")
    refusal = await telegram.wait_for(
        lambda: [
            c
            for c in telegram.calls_of("sendMessage", group.id)
            if "your share" in c.params["text"]
        ]
    )
    assert (
        refusal[0]
        .result["text"]
        .startswith("💳 You have used your share for today in this group: 0 of 10 credits left")
    )
    tasks = await bot.wait_until_settled(count=3)
    assert sorted(t["user_id"] for t in tasks) == [ANN.id, ANN.id, BOB.id]
    text = await quota_text(telegram, group, BOB)
    assert "Your share today: 5 of 10 left" in text


async def test_admins_change_settings_and_members_cannot(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(group_user_daily_credits=0)
    group = telegram.group_chat(-100902)
    telegram.set_member_status(group, ANN, "creator")
    telegram.send_text(group, ANN, "/settings")
    [panel] = await telegram.wait_for_call("sendMessage", group.id)
    message_id = panel.result["message_id"]

    def labels() -> list[str]:
        markup = telegram.message(group.id, message_id).payload["reply_markup"]
        return [row[0]["text"] for row in markup["inline_keyboard"]]

    assert labels() == [
        "🔘 Result buttons: the requester and admins",
        "🌶 Spicy mode: off",
        "📐 Default ratio: 1:1",
        "👤 Per-member daily cap: none",
    ]
    query = telegram.press(group, BOB, message_id, "s:buttons")
    await telegram.wait_for(lambda: telegram.answer_to(query))
    assert telegram.answer_to(query) == "Only chat admins can change the settings."
    assert bot.rows("SELECT * FROM chat_settings") == []

    for setting in ("buttons", "ratio", "ratio", "cap", "spicy"):
        query = telegram.press(group, ANN, message_id, f"s:{setting}")
        await telegram.wait_for(lambda q=query: telegram.answer_to(q))  # type: ignore[misc]
    await telegram.wait_for(lambda: "Spicy mode: allowed" in " ".join(labels()))
    assert labels() == [
        "🔘 Result buttons: everyone",
        "🌶 Spicy mode: allowed",
        "📐 Default ratio: 3:2",
        "👤 Per-member daily cap: 10",
    ]
    # The default ratio now applies to /imagine without --ar.
    telegram.send_text(group, BOB, "/imagine wide by default")
    await bot.wait_until_settled(count=1)
    assert kie.created[0].request["input"]["aspect_ratio"] == "3:2"


async def test_members_may_not_press_someone_elses_buttons_unless_allowed(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    group = telegram.group_chat(-100903)
    telegram.send_text(group, ANN, "/imagine mine")
    [task] = await bot.wait_until_settled()
    buttons = task["buttons_message_id"]
    query = telegram.press(group, BOB, buttons, f"r:{task['id']}")
    await telegram.wait_for(lambda: telegram.answer_to(query) is not None)
    assert telegram.answer_to(query) == (
        "Only the person who asked, or a chat admin, can use these buttons."
    )
    assert len(kie.created) == 1

    bot.rows(  # what an admin's /settings press records
        "INSERT INTO chat_settings (chat_id, buttons_for, updated_at) VALUES (?, 'everyone', ?)",
        (group.id, time.time()),
    )
    query = telegram.press(group, BOB, buttons, f"r:{task['id']}")
    await telegram.wait_for(lambda: telegram.answer_to(query) is not None)
    tasks = await bot.wait_until_settled(count=2)
    assert tasks[1]["user_id"] == BOB.id


async def test_a_group_upgraded_to_a_supergroup_keeps_its_credits_and_settings(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(chat_daily_credits=10, admin_user_ids=str(OPERATOR.id))
    group = telegram.group_chat(-100904)
    telegram.send_text(group, OPERATOR, "/grant here 3")
    await telegram.wait_for_call("sendMessage", group.id, count=1)
    telegram.send_text(group, OPERATOR, "/setquota here 20")
    await telegram.wait_for_call("sendMessage", group.id, count=2)
    telegram.send_text(group, ANN, "/imagine before the upgrade")
    await bot.wait_until_settled(count=1)

    supergroup = telegram.migrate(group, -1001234567890)
    # A condition in SQLite: no Telegram call announces it.
    await eventually(lambda: bot.rows("SELECT * FROM ledger WHERE chat_id = ?", (group.id,)) == [])
    assert {row["chat_id"] for row in bot.rows("SELECT chat_id FROM tasks")} == {supergroup.id}
    text = await quota_text(telegram, supergroup, ANN)
    assert "Today: 15 of 20 left\nGranted: 3\n" in text


async def crash_after_reserving(start_bot: StartBot, state: str) -> RunningBot:
    """A task recorded with its reservation, and the process gone before the upstream
    answered (`pending`: before it was asked; `submitting`: while it was being asked)."""
    bot = await start_bot()
    await bot.stop()
    now = time.time()
    [task] = bot.rows(
        "INSERT INTO tasks (kind, state, account, chat_id, chat_type, user_id, lang, prompt,"
        " aspect_ratio, cost, created_at, updated_at)"
        " VALUES ('text_to_image', ?, 'kie', ?, 'private', ?, 'en', 'crash', '1:1', 5, ?, ?)"
        " RETURNING id",
        (state, ANN.id, ANN.id, now, now),
    )
    bot.rows(
        "INSERT INTO ledger (chat_id, user_id, task_id, kind, amount, from_daily, day,"
        " created_at) VALUES (?, ?, ?, 'reserve', 5, 5, ?, ?)",
        (ANN.id, ANN.id, task["id"], utc_day(now), now),
    )
    return await start_bot()


async def test_crash_before_the_upstream_call_submits_and_charges_once(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    chat = telegram.private_chat(ANN)
    bot = await crash_after_reserving(start_bot, "pending")
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert len(kie.created) == 1
    assert ledger(bot, chat.id) == [("reserve", 5, task["id"]), ("commit", 5, task["id"])]


async def test_crash_during_the_upstream_call_refunds(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    chat = telegram.private_chat(ANN)
    bot = await crash_after_reserving(start_bot, "submitting")
    [task] = await bot.wait_until_settled()
    assert task["state"] == "reported"
    assert kie.create_attempts == 0
    assert ledger(bot, chat.id) == [("reserve", 5, task["id"]), ("refund", 5, task["id"])]
    text = await quota_text(telegram, chat, ANN)
    assert "Today: 100 of 100 left" in text


async def test_private_chat_owner_changes_settings_and_spicy_can_be_off_everywhere(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(allow_spicy=False)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/settings")
    [panel] = await telegram.wait_for_call("sendMessage", chat.id)
    message_id = panel.result["message_id"]
    rows = panel.result["reply_markup"]["inline_keyboard"]
    # No group-only rows in a private chat; spicy shows as off for the whole bot.
    assert [row[0]["text"] for row in rows] == [
        "🌶 Spicy mode: off on this bot",
        "📐 Default ratio: 1:1",
    ]
    query = telegram.press(chat, ANN, message_id, "s:spicy")
    await telegram.wait_for(lambda: telegram.answer_to(query) is not None)
    assert telegram.answer_to(query) == "Spicy mode is turned off on this bot."
    query = telegram.press(chat, ANN, message_id, "s:ratio")
    await telegram.wait_for(lambda: telegram.answer_to(query) == "Saved.")
    [row] = bot.rows("SELECT allow_spicy, default_ratio FROM chat_settings")
    assert (row["allow_spicy"], row["default_ratio"]) == (0, "2:3")
