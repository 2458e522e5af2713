"""The task engine under limits and faults: the account's caps, fairness, places in line,
429s, /cancel, blocked users, migrated chats."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from fakes.kie import HELD, FakeKie, FakeTask
from fakes.telegram import Call, FakeChat, FakeTelegram, FakeUser
from tests.conftest import FAST, StartBot, eventually

USERS = [FakeUser(5000 + i, f"user{i}", "en") for i in range(6)]


def most_at_once(tasks: list[FakeTask]) -> int:
    """The most upstream tasks that were running at the same moment."""
    events = sorted(
        [(t.created_at, 1) for t in tasks] + [(t.done_at, -1) for t in tasks],
        key=lambda event: (event[0], event[1]),
    )
    current = peak = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


async def test_no_more_than_the_concurrency_cap_runs_upstream(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = HELD  # each runs until the test ends it
    bot = await start_bot(max_concurrent_tasks=2)
    for user in USERS:
        telegram.send_text(telegram.private_chat(user), user, f"/imagine for {user.id}")
    for ending in range(6):
        # Two run at once (fewer at the end); one ends, and the next may start.
        await eventually(lambda n=ending: len(kie.created) >= min(n + 2, 6))  # type: ignore[misc]
        assert sum(1 for t in kie.created if t.done_at > time.time()) <= 2
        kie.finish(kie.created[ending])
    tasks = await bot.wait_until_settled(count=6)
    assert {t["state"] for t in tasks} == {"delivered"}
    assert len(kie.created) == 6
    assert most_at_once(kie.created) == 2


def shown_in_line(telegram: FakeTelegram, *chats: FakeChat) -> set[tuple[int, int]]:
    """The status messages (chat, message) that have shown a place in line."""
    return {
        (int(c.params["chat_id"]), int(c.params["message_id"]))
        for chat in chats
        for c in telegram.calls_of("editMessageText", chat.id)
        if c.ok and c.params["text"].startswith("⏳ Waiting in line")
    }


async def test_chats_take_turns(telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot) -> None:
    kie.next_scenarios.append(HELD)  # the first holds the line while the rest come
    bot = await start_bot(max_concurrent_tasks=1)
    busy, quiet = USERS[0], USERS[1]
    busy_chat, quiet_chat = telegram.private_chat(busy), telegram.private_chat(quiet)
    telegram.send_text(busy_chat, busy, "/imagine busy 0")
    await eventually(lambda: kie.created)
    # Each message recorded before the next is sent: messages that arrive together are
    # recorded in any order on PostgreSQL (the line orders a chat's waiting tasks by their
    # messages).
    for count, (chat, user, prompt) in enumerate(
        [(busy_chat, busy, f"busy {n}") for n in range(1, 4)]
        + [(quiet_chat, quiet, f"quiet {n}") for n in range(2)],
        start=2,
    ):
        telegram.send_text(chat, user, f"/imagine {prompt}")
        await eventually(lambda count=count: len(bot.tasks()) == count)  # type: ignore[misc]
    # All five wait in the line (each shows its place) before the first ends.
    await telegram.wait_for(lambda: len(shown_in_line(telegram, busy_chat, quiet_chat)) == 5)
    kie.finish(kie.created[0])
    await bot.wait_until_settled(count=6)
    order = [t.request["input"]["prompt"] for t in kie.created]
    assert order == ["busy 0", "busy 1", "quiet 0", "busy 2", "quiet 1", "busy 3"]


def status_texts(telegram: FakeTelegram, chat: FakeChat, message_id: int) -> list[str]:
    """Every text a status message has shown, first to last."""
    first = [
        c.params["text"]
        for c in telegram.calls_of("sendMessage", chat.id)
        if c.ok and c.result["message_id"] == message_id
    ]
    edits = [
        c.params["text"]
        for c in telegram.calls_of("editMessageText", chat.id)
        if c.ok and str(c.params["message_id"]) == str(message_id)
    ]
    return first + edits


async def test_waiting_tasks_show_their_place_as_the_line_moves(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.next_scenarios.extend([HELD, HELD])
    bot = await start_bot(max_concurrent_tasks=1)
    first, second = USERS[0], USERS[1]
    telegram.send_text(telegram.private_chat(first), first, "/imagine first in line")
    await eventually(lambda: kie.created)
    chat = telegram.private_chat(second)
    telegram.send_text(chat, second, "/imagine second")
    await eventually(lambda: len(bot.tasks()) == 2)  # recorded in this order (PostgreSQL)
    telegram.send_text(chat, second, "/imagine third")
    await eventually(lambda: len(bot.tasks()) == 3 and bot.tasks()[2]["status_message_id"])
    third_status = bot.tasks()[2]["status_message_id"]

    def shown_place(n: int) -> bool:
        # One slot, taken; no task delivered yet, so a task is taken to last a typical 20 s:
        # second in line, it waits about 40 s (shown as "about 1 min").
        return f"⏳ Waiting in line: number {n}, about 1 min" in status_texts(
            telegram, chat, third_status
        )

    await telegram.wait_for(lambda: shown_place(2))
    kie.finish(kie.created[0])  # the second goes; the third moves up
    await telegram.wait_for(lambda: shown_place(1))
    await eventually(lambda: len(kie.created) == 2)
    kie.finish(kie.created[1])
    tasks = await bot.wait_until_settled(count=3)
    third = next(t for t in tasks if t["prompt"] == "third")
    shown = status_texts(telegram, chat, third["status_message_id"])
    places = [text for text in shown if text.startswith("⏳ Waiting in line")]
    assert places == [
        "⏳ Waiting in line: number 2, about 1 min",
        "⏳ Waiting in line: number 1, about 1 min",
    ]


async def test_an_upstream_429_holds_the_whole_line(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(max_concurrent_tasks=1)
    kie.fail_creates(429, "rate limited", http_status=429, headers={"Retry-After": "1"})
    sent = time.time()
    for user in USERS[:2]:
        telegram.send_text(telegram.private_chat(user), user, f"/imagine {user.id}")
    await bot.wait_until_settled(count=2)
    assert kie.create_attempts == 3
    assert all(task.created_at - sent >= 1.0 for task in kie.created)


async def test_cancel_a_waiting_task_refunds_it(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.next_scenarios.append(HELD)
    bot = await start_bot(max_concurrent_tasks=1)
    user = USERS[0]
    chat = telegram.private_chat(user)
    telegram.send_text(chat, user, "/imagine runs")
    await eventually(lambda: kie.created)
    telegram.send_text(chat, user, "/imagine waits")
    await eventually(lambda: len(bot.tasks()) == 2 and bot.tasks()[1]["status_message_id"])
    telegram.send_text(chat, user, "/cancel")  # the latest: the one waiting
    await eventually(lambda: bot.tasks()[1]["state"] == "reported")
    telegram.send_text(chat, user, "/cancel")  # now the latest is the one already running
    [too_late] = await telegram.wait_for(
        lambda: [
            c
            for c in telegram.calls_of("sendMessage", chat.id)
            if "already being made" in c.params["text"]
        ]
    )
    kie.finish(kie.created[0])
    tasks = await bot.wait_until_settled(count=2)
    assert [t["state"] for t in tasks] == ["delivered", "reported"]
    assert tasks[1]["failure_kind"] == "cancelled"
    notice = telegram.message(chat.id, tasks[1]["status_message_id"]).payload["text"]
    assert notice == "✖ Cancelled.\n💳 The 5 credits were returned."
    assert [t.request["input"]["prompt"] for t in kie.created] == ["runs"]
    kinds = [
        r["kind"] for r in bot.rows("SELECT kind FROM ledger WHERE task_id = ?", (tasks[1]["id"],))
    ]
    assert kinds == ["reserve", "refund"]
    assert too_late.ok


async def test_cancel_as_a_reply_to_a_status_message_and_only_by_its_owner(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.next_scenarios.append(HELD)
    bot = await start_bot(max_concurrent_tasks=1)
    group = telegram.group_chat(-100990)
    owner, other = USERS[0], USERS[1]
    telegram.send_text(group, owner, "/imagine runs")
    await eventually(lambda: kie.created)
    telegram.send_text(group, owner, "/imagine waits")
    await eventually(lambda: len(bot.tasks()) == 2 and bot.tasks()[1]["status_message_id"])
    status_id = bot.tasks()[1]["status_message_id"]
    telegram.send_text(group, other, "/cancel", reply_to=status_id)
    [refused] = await telegram.wait_for(
        lambda: [
            c
            for c in telegram.calls_of("sendMessage", group.id)
            if "nothing of yours" in c.params["text"]
        ]
    )
    assert refused.ok
    telegram.send_text(group, owner, "/cancel", reply_to=status_id)
    await eventually(lambda: bot.tasks()[1]["state"] == "reported")
    kie.finish(kie.created[0])
    tasks = await bot.wait_until_settled(count=2)
    assert tasks[1]["failure_kind"] == "cancelled"


async def test_a_user_who_blocked_the_bot_is_refunded_quietly(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = HELD
    bot = await start_bot()
    user = USERS[0]
    chat = telegram.private_chat(user)
    telegram.send_text(chat, user, "/imagine then I leave")
    await eventually(lambda: kie.created)
    telegram.blocked.add(chat.id)
    kie.finish(kie.created[0])
    [task] = await bot.wait_until_settled()
    assert (task["state"], task["failure_kind"]) == ("reported", "delivery")
    assert [r["kind"] for r in bot.rows("SELECT kind FROM ledger ORDER BY id")] == [
        "reserve",
        "refund",
    ]
    refused = [c for c in telegram.calls if c.error and "blocked" in c.error]
    assert len([c for c in refused if c.method == "sendMediaGroup"]) == 1  # no retry storm


async def test_a_chat_that_became_a_supergroup_is_followed(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = HELD
    bot = await start_bot()
    group = telegram.group_chat(-100991)
    telegram.send_text(group, USERS[0], "/imagine across the upgrade")
    await eventually(lambda: kie.created)
    supergroup = telegram.migrate(group, -1009910000000)
    kie.finish(kie.created[0])
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert task["chat_id"] == supergroup.id
    albums: list[Call] = [c for c in telegram.calls_of("sendMediaGroup") if c.ok]
    assert [c.params["chat_id"] for c in albums] == [str(supergroup.id)]


async def test_a_telegram_429_on_the_album_is_waited_out(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(timing=replace(FAST))
    telegram.fail_next("sendMediaGroup", 429, "Too Many Requests: retry after 1", retry_after=1)
    user = USERS[0]
    chat = telegram.private_chat(user)
    telegram.send_text(chat, user, "/imagine flooded")
    [task] = await bot.wait_until_settled()
    attempts = telegram.calls_of("sendMediaGroup", chat.id)
    assert [c.ok for c in attempts] == [False, True]
    assert attempts[1].at - attempts[0].at >= 1.0
    assert task["state"] == "delivered"
    await asyncio.sleep(0)


async def test_a_request_that_would_wait_past_the_lines_limit_is_refused_free(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # One task at a time, images of 20 s (the typical time: none has ended yet), a limit
    # of a minute: with four tasks in hand, a fifth would wait 80 s.
    kie.scenario = HELD
    bot = await start_bot(max_concurrent_tasks=1, line_max_wait=60)
    user = USERS[0]
    chat = telegram.private_chat(user)
    for n in range(4):
        telegram.send_text(chat, user, f"/imagine number {n}")
        await eventually(lambda n=n: len(bot.tasks()) == n + 1)  # type: ignore[misc]

    def refusals() -> list[str]:
        texts = [c.params["text"] for c in telegram.calls_of("sendMessage", chat.id) if c.ok]
        return [t for t in texts if t.startswith("⏳ The line is long")]

    telegram.send_text(chat, user, "/imagine one too many")
    [refusal] = await eventually(refusals)
    assert "would wait about 2 min" in refusal
    assert "Nothing was charged" in refusal
    assert len(bot.tasks()) == 4
    reserved = bot.rows("SELECT COUNT(*) FROM ledger WHERE kind = 'reserve'")
    assert reserved[0][0] == 4
    # A task ends in well under a second: the line learns it, and takes the request.
    kie.finish(kie.created[0])
    await eventually(lambda: bot.tasks()[0]["state"] == "delivered")
    telegram.send_text(chat, user, "/imagine taken now")
    await eventually(lambda: len(bot.tasks()) == 5)
    assert len(refusals()) == 1
