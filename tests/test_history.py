"""/history: a member's results in a chat, a page at a time; one chosen comes again from
Telegram's file ids, free, with buttons that work as on the day it was made."""

from __future__ import annotations

import json
from typing import Any

from fakes.kie import FakeKie
from fakes.telegram import Call, FakeChat, FakeTelegram, FakeUser
from tests.conftest import RunningBot, StartBot

ANN = FakeUser(1001, "Ann", "en")
BOB = FakeUser(1002, "Bob", "en")


def keyboard(call: Call) -> list[list[dict[str, Any]]]:
    markup = call.json("reply_markup") or {}
    rows: list[list[dict[str, Any]]] = markup.get("inline_keyboard", [])
    return rows


async def make(
    telegram: FakeTelegram,
    bot: RunningBot,
    chat: FakeChat,
    prompts: list[str],
    *,
    thread_id: int | None = None,
) -> None:
    for n, prompt in enumerate(prompts, 1):
        telegram.send_text(chat, ANN, f"/imagine {prompt}", thread_id=thread_id)
        await bot.wait_until_settled(count=n)


async def history(
    telegram: FakeTelegram, chat: FakeChat, user: FakeUser, *, thread_id: int | None = None
) -> Call:
    before = len(telegram.calls_of("sendMessage", chat.id))
    telegram.send_text(chat, user, "/history", thread_id=thread_id)
    calls = await telegram.wait_for_call("sendMessage", chat.id, count=before + 1)
    return calls[-1]


async def test_history_pages_newest_first_and_only_its_owner_turns_them(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    chat = telegram.private_chat(ANN)
    await make(telegram, bot, chat, [f"fox number {n}" for n in range(1, 8)])

    listing = await history(telegram, chat, ANN)
    assert listing.result["text"] == (
        "🕘 What you made here, newest first (page 1 of 2). Choose one to get it again, free."
    )
    rows = keyboard(listing)
    assert [row[0]["text"].split(" · ")[0] for row in rows[:-1]] == [
        f"🖼 fox number {n}" for n in (7, 6, 5, 4, 3)
    ]
    assert [b["text"] for b in rows[-1]] == ["Older ▶"]

    message_id = listing.result["message_id"]
    older = rows[-1][0]["callback_data"]
    assert await telegram.wait_for_answer(telegram.press(chat, BOB, message_id, older)) == (
        "This list is someone else's: /history shows yours."
    )
    assert await telegram.wait_for_answer(telegram.press(chat, ANN, message_id, older)) == ""
    edit = await telegram.wait_for(
        lambda: next(
            (
                c
                for c in telegram.calls_of("editMessageText", chat.id)
                if c.ok and c.params.get("message_id") == str(message_id)
            ),
            None,
        )
    )
    assert edit.result["text"].startswith("🕘 What you made here, newest first (page 2 of 2).")
    rows = keyboard(edit)
    assert [row[0]["text"].split(" · ")[0] for row in rows[:-1]] == [
        "🖼 fox number 2",
        "🖼 fox number 1",
    ]
    assert [b["text"] for b in rows[-1]] == ["◀ Newer"]


async def test_a_result_comes_again_in_its_forum_topic_free_and_its_buttons_work(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    group = telegram.group_chat(-100900, "Forum", forum=True)
    await make(telegram, bot, group, ["a fox in a topic"], thread_id=7)
    [task] = bot.rows("SELECT * FROM tasks")
    created, ledger = len(kie.created), len(bot.rows("SELECT * FROM ledger"))
    # The upstream's result URLs have expired: nothing is fetched from them again.
    kie.tasks.clear()

    listing = await history(telegram, group, ANN, thread_id=7)
    assert listing.params["message_thread_id"] == "7"
    [[item]] = keyboard(listing)
    query = telegram.press(group, ANN, listing.result["message_id"], item["callback_data"])
    assert await telegram.wait_for_answer(query) == ""
    [_, again] = await telegram.wait_for_call("sendMediaGroup", group.id, count=2)
    assert again.params["message_thread_id"] == "7"
    media = again.json("media")
    assert [m["media"] for m in media] == json.loads(task["media_file_ids"])
    assert media[0]["caption"] == "a fox in a topic"
    buttons = (await telegram.wait_for_call("sendMessage", group.id, count=4))[-1]
    assert buttons.params["message_thread_id"] == "7"
    assert len(kie.created) == created
    assert len(bot.rows("SELECT * FROM ledger")) == ledger  # no charge

    # 🎬 under the resent set animates, as under the first one.
    animate = keyboard(buttons)[0][0]["callback_data"]
    query = telegram.press(group, ANN, buttons.result["message_id"], animate)
    assert await telegram.wait_for_answer(query) == ""
    draft = (await telegram.wait_for_call("sendMessage", group.id, count=5))[-1]
    assert draft.result["text"].startswith("🎬 Animating image 1.")


async def test_someone_elses_result_and_an_empty_history(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    group = telegram.group_chat(-100901)
    await make(telegram, bot, group, ["Ann's fox"])
    listing = await history(telegram, group, ANN)
    [[item]] = keyboard(listing)
    query = telegram.press(group, BOB, listing.result["message_id"], item["callback_data"])
    assert await telegram.wait_for_answer(query) == (
        "This list is someone else's: /history shows yours."
    )
    assert (await history(telegram, group, BOB)).result["text"] == (
        "Nothing of yours here yet. Make something with /imagine."
    )
    assert len(telegram.calls_of("sendMediaGroup", group.id)) == 1
