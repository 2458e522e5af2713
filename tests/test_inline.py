"""Inline mode: `@bot prompt` answers at once and makes nothing; a chosen "Create" makes a
task paid from the user's own credits, whose first image is edited into the inline message."""

from __future__ import annotations

from typing import Any

from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import RunningBot, StartBot, eventually

ANN = FakeUser(1001, "Ann", "en")


async def answer(telegram: FakeTelegram, user: FakeUser, query: str) -> tuple[str, Any]:
    query_id = telegram.inline_query(user, query)
    results = await telegram.wait_for(lambda: telegram.inline_answer(query_id))
    return query_id, results


def ledger(bot: RunningBot) -> list[tuple[int, str, int]]:
    return [
        (r["chat_id"], r["kind"], r["amount"]) for r in bot.rows("SELECT * FROM ledger ORDER BY id")
    ]


async def test_create_from_inline_mode_edits_the_first_image_into_the_message(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    # An earlier set, made in a private chat, is offered again by file id.
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a red fox in snow")
    [earlier] = await bot.wait_until_settled()

    query_id, results = await answer(telegram, ANN, "red fox")
    assert [r["id"] for r in results] == ["create", f"t{earlier['id']}"]
    create, made_before = results
    assert create["title"] == "🎨 Create: red fox"
    assert create["input_message_content"]["message_text"] == "🎨 Making: red fox…"
    assert made_before["type"] == "photo"
    assert len(kie.created) == 1  # the query itself made nothing

    inline_message_id = telegram.choose(query_id, "create")
    assert inline_message_id is not None
    [_, task] = await bot.wait_until_settled(count=2)
    assert (task["state"], task["chat_id"], task["inline_message_id"]) == (
        "delivered",
        ANN.id,
        inline_message_id,
    )
    assert ledger(bot)[-2:] == [(ANN.id, "reserve", 5), (ANN.id, "commit", 5)]
    [edit] = telegram.calls_of("editMessageMedia")
    assert edit.params["inline_message_id"] == inline_message_id
    assert edit.json("media")["media"] == kie.result_urls(kie.created[1])[0]
    message = telegram.inline_messages[inline_message_id]
    assert message["caption"] == "red fox"
    [[button]] = message["reply_markup"]["inline_keyboard"]
    assert button["url"] == f"https://t.me/imagine_test_bot?start=t{task['id']}"
    # No status message or album in the user's private chat for it.
    assert len(telegram.calls_of("sendMediaGroup")) == 1

    # The button: all six in a private chat, with their buttons.
    telegram.send_text(chat, ANN, f"/start t{task['id']}")
    [_, album] = await telegram.wait_for_call("sendMediaGroup", chat.id, count=2)
    assert len(album.json("media")) == 6
    await eventually(lambda: bot.rows("SELECT buttons_message_id FROM tasks")[1][0])


async def test_a_failure_is_refunded_and_the_inline_message_says_why(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    kie.scenario = Scenario(outcome="fail")
    query_id, _ = await answer(telegram, ANN, "a storm at sea")
    inline_message_id = telegram.choose(query_id, "create")
    assert inline_message_id is not None
    [task] = await bot.wait_until_settled()
    assert task["state"] == "reported"
    assert [k for _, k, _ in ledger(bot)] == ["reserve", "refund"]
    text = telegram.inline_messages[inline_message_id]["text"]
    assert "5 credits were returned" in text


async def test_an_empty_or_over_long_query_gets_a_result_that_explains_it(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    _, empty = await answer(telegram, ANN, "")
    assert [(r["id"], r["title"]) for r in empty] == [("explain", "✍ Type what to make")]
    _, long = await answer(telegram, ANN, "x" * 256)
    assert [(r["id"], r["title"]) for r in long] == [("explain", "✂ Too long for inline mode")]
    assert long[0]["description"].startswith("Telegram stops inline text at 256 characters")
    assert bot.rows("SELECT * FROM tasks") == []


async def test_a_user_out_of_credits_reads_why_in_the_inline_message(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(chat_daily_credits=0)
    query_id, _ = await answer(telegram, ANN, "a fox")
    inline_message_id = telegram.choose(query_id, "create")
    assert inline_message_id is not None
    await telegram.wait_for(
        lambda: telegram.inline_messages[inline_message_id]["text"].startswith("💳")
    )
    assert bot.rows("SELECT * FROM tasks") == []
    assert kie.created == []


async def test_an_image_telegram_will_not_take_by_url_leaves_a_link_in_the_inline_message(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # Telegram takes photos by URL up to 5 MB, and an inline message takes no upload.
    bot = await start_bot()
    kie.scenario = Scenario(sizes=((0, 6 * 1024 * 1024),))
    query_id, _ = await answer(telegram, ANN, "a very detailed fox")
    inline_message_id = telegram.choose(query_id, "create")
    assert inline_message_id is not None
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    message = telegram.inline_messages[inline_message_id]
    assert message["text"] == f"🖼 Ready: {kie.result_urls(kie.created[0])[0]}"
    assert message["reply_markup"]["inline_keyboard"][0][0]["url"].endswith(f"start=t{task['id']}")


async def test_help_tells_how_to_use_inline_mode_in_both_languages(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    await start_bot()
    for user, expected in (
        (ANN, "In any chat, type @imagine_test_bot a red fox in snow and choose “Create”"),
        (FakeUser(1002, "Бо", "ru"), "В любом чате напишите @imagine_test_bot рыжая лиса"),
    ):
        chat = telegram.private_chat(user)
        telegram.send_text(chat, user, "/help")
        [help_text] = await telegram.wait_for_call("sendMessage", chat.id)
        assert expected in help_text.result["text"]


async def test_a_chosen_result_reported_twice_makes_one_task_and_no_refusal(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # Regression: the repeat was charged again first, and with the credits spent by the
    # first it turned the inline message into "not enough credits".
    bot = await start_bot(chat_daily_credits=5)
    kie.scenario = Scenario(duration=1.0)
    query_id, _ = await answer(telegram, ANN, "a fox")
    inline_message_id = telegram.choose(query_id, "create")
    assert inline_message_id is not None
    await eventually(lambda: bot.rows("SELECT * FROM tasks"))
    telegram.report_chosen_again()
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert "caption" in telegram.inline_messages[inline_message_id]
    assert not telegram.calls_of("editMessageText")


async def test_without_inline_feedback_a_chosen_create_makes_nothing(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # BotFather's /setinlinefeedback off: Telegram never says which result was chosen (the
    # user guide tells operators to turn it on).
    bot = await start_bot()
    telegram.inline_feedback = False
    query_id, _ = await answer(telegram, ANN, "a fox")
    inline_message_id = telegram.choose(query_id, "create")
    assert inline_message_id is not None
    telegram.send_text(telegram.private_chat(ANN), ANN, "/quota")  # handled after the choice
    await telegram.wait_for_call("sendMessage", ANN.id)
    assert bot.rows("SELECT * FROM tasks") == []
    assert telegram.inline_messages[inline_message_id]["text"] == "🎨 Making: a fox…"
