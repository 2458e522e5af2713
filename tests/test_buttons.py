"""The buttons under a result: reroll, animate (not yet), and data the bot did not make."""

from __future__ import annotations

from fakes.kie import FakeKie
from fakes.telegram import FakeChat, FakeTelegram, FakeUser
from tests.conftest import RunningBot

ANN = FakeUser(1001, "Ann", "en")
BOB = FakeUser(1003, "Bob", "ru")


async def deliver_one(telegram: FakeTelegram, bot: RunningBot, chat: FakeChat) -> int:
    """/imagine in `chat`; returns the id of the message that carries the buttons."""
    telegram.send_text(chat, ANN, "/imagine a red fox --ar 2:3")
    [task] = await bot.wait_until_settled()
    buttons_message_id: int = task["buttons_message_id"]
    return buttons_message_id


async def test_reroll_makes_a_new_task_with_the_same_prompt_and_ratio(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    group = telegram.group_chat(-100700)
    buttons = await deliver_one(telegram, bot, group)
    keyboard = telegram.message(group.id, buttons).payload["reply_markup"]["inline_keyboard"]
    reroll = keyboard[-1][0]
    assert reroll["text"] == "🔁"

    telegram.set_member_status(group, BOB, "administrator")  # admins may press anyone's buttons
    query = telegram.press(group, BOB, buttons, reroll["callback_data"])
    assert await telegram.wait_for_answer(query) == "🔁 Делаю новый набор…"
    first, second = await bot.wait_until_settled(count=2)

    assert [t.request["input"] for t in kie.created] == [
        {"prompt": "a red fox", "aspect_ratio": "2:3"}
    ] * 2
    assert second["state"] == "delivered"
    assert second["parent_task_id"] == first["id"]
    assert (second["user_id"], second["lang"]) == (BOB.id, "ru")
    # The new status message answers the buttons that were pressed.
    status = [c for c in telegram.calls_of("sendMessage", group.id) if c.ok][2]
    assert status.json("reply_parameters")["message_id"] == buttons
    assert len([c for c in telegram.calls_of("sendMediaGroup") if c.ok]) == 2


async def test_unknown_button_data_gets_a_short_notice(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    buttons = await deliver_one(telegram, bot, chat)
    for data in ["garbage", "r:999", "a:1:x", "r:1:extra"]:
        query = telegram.press(chat, ANN, buttons, data)
        assert await telegram.wait_for_answer(query) == "This button is no longer valid."
    assert len(kie.created) == 1
    assert len(bot.tasks()) == 1


async def test_button_cannot_act_on_another_chats_task(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    await deliver_one(telegram, bot, chat)
    intruder_chat = telegram.private_chat(BOB)
    bait = telegram.send_text(intruder_chat, BOB, "hello")
    # Forged data naming Ann's task, on a message in Bob's chat.
    query = telegram.press(intruder_chat, BOB, bait["message_id"], "r:1")
    assert await telegram.wait_for_answer(query) == "Эта кнопка больше не работает."
    assert len(kie.created) == 1
