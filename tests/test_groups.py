"""Busy groups and back-to-back chats: presses answered at once whatever waits in the
chat's queue, administrators known without a call per press, private chats at Telegram's
own pace."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from telegram import Bot, ChatMember, User

from bot.telegram.admins import ChatAdmins
from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeChat, FakeTelegram, FakeUser
from storage.chats import ChatRepository
from storage.database import Database
from tests.conftest import BOT_TOKEN, LOOSE_FLOOD, FakeClock, RunningBot, StartBot, eventually

ANN = FakeUser(1001, "Ann", "en")
BOB = FakeUser(1002, "Bob", "en")
CAT = FakeUser(1003, "Cat", "en")
NOT_YOURS = "Only the person who asked, or a chat admin, can use these buttons."


def buttons_of(telegram: FakeTelegram, chat: FakeChat, message_id: int) -> list[str]:
    markup = telegram.message(chat.id, message_id).payload["reply_markup"]
    return [button["callback_data"] for row in markup["inline_keyboard"] for button in row]


def messages_to(telegram: FakeTelegram, chat: FakeChat) -> int:
    return sum(
        1
        for c in telegram.calls
        if c.ok
        and c.method.startswith("send")
        and c.params.get("chat_id") == str(chat.id)
        and c.method != "sendChatAction"
    )


async def test_a_press_is_answered_while_the_groups_queue_is_full(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # The group may send four messages, then one every 1000 s: once the first album is out,
    # everything else for the group waits in its queue for the rest of the test.
    kie.scenario = Scenario(duration=0.1)
    bot = await start_bot(flood_limits=replace(LOOSE_FLOOD, group=(4, 4000.0)))
    group = telegram.group_chat(-100800)
    telegram.send_text(group, ANN, "/imagine a red fox")
    [first] = await bot.wait_until_settled()
    sent = messages_to(telegram, group)  # the status message, the album, the buttons
    assert sent == 3
    for prompt in ("a blue fox", "a green fox", "a gold fox"):
        telegram.send_text(group, ANN, f"/imagine {prompt}")
    await eventually(lambda: len(kie.created) == 4)  # no Telegram call announces it

    animate = buttons_of(telegram, group, first["buttons_message_id"])[0]
    others = telegram.press(group, BOB, first["buttons_message_id"], animate)
    own = telegram.press(group, ANN, first["buttons_message_id"], animate)
    assert await telegram.wait_for_answer(others) == NOT_YOURS
    assert await telegram.wait_for_answer(own) == ""
    # Answered, while the group's messages (three results, the choice) still wait.
    assert messages_to(telegram, group) <= sent + 1
    assert not telegram.calls_of("getChatMember")
    assert len(telegram.calls_of("getChatAdministrators", group.id)) == 1


async def test_administrators_are_read_once_and_again_when_they_change(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    clock = FakeClock(time.time())
    bot = await start_bot(clock=clock)
    group = telegram.group_chat(-100801)
    telegram.set_member_status(group, ANN, "creator")
    telegram.send_text(group, ANN, "/imagine a red fox")
    [task] = await bot.wait_until_settled()
    reroll = buttons_of(telegram, group, task["buttons_message_id"])[-1]

    def press(user: FakeUser) -> str:
        return telegram.press(group, user, task["buttons_message_id"], reroll)

    def reads() -> int:
        return len(telegram.calls_of("getChatAdministrators", group.id))

    assert await telegram.wait_for_answer(press(BOB)) == NOT_YOURS
    assert await telegram.wait_for_answer(press(CAT)) == NOT_YOURS
    assert reads() == 1  # one read for both presses

    # Bob is promoted: Telegram says so with a chat_member update, and the bot reads again.
    telegram.set_member_status(group, BOB, "administrator")
    assert await telegram.wait_for_answer(press(BOB)) == "🔁 Making a new set…"
    assert reads() == 2
    await bot.wait_until_settled(count=2)

    # Demoted without an update (a bot that is no admin gets none): the list is kept for
    # five minutes, then read again.
    telegram.set_member_status(group, BOB, "member", announce=False)
    clock.advance(299)
    assert await telegram.wait_for_answer(press(BOB)) == "🔁 Making a new set…"
    assert reads() == 2
    await bot.wait_until_settled(count=3)
    clock.advance(2)
    assert await telegram.wait_for_answer(press(BOB)) == NOT_YOURS
    assert reads() == 3
    assert len(bot.tasks()) == 3


async def test_settings_ask_the_same_list_of_administrators(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    group = telegram.group_chat(-100802)
    telegram.set_member_status(group, ANN, "administrator")
    telegram.send_text(group, ANN, "/settings")
    [keyboard] = await telegram.wait_for_call("sendMessage", group.id)
    message_id = keyboard.result["message_id"]
    assert await telegram.wait_for_answer(telegram.press(group, BOB, message_id, "s:buttons")) == (
        "Only chat admins can change the settings."
    )
    assert await telegram.wait_for_answer(telegram.press(group, ANN, message_id, "s:buttons")) == (
        "Saved."
    )
    assert len(telegram.calls_of("getChatAdministrators", group.id)) == 1
    assert not telegram.calls_of("getChatMember")


async def test_back_to_back_tasks_in_a_private_chat_keep_to_telegrams_pace(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # Production's pace against a Telegram server that enforces its limits: each /imagine
    # is sent when the previous album arrives, and every task is delivered, in order.
    telegram.flood_limits = True
    kie.scenario = Scenario(duration=0.5)
    bot = await start_bot(flood_limits=replace(LOOSE_FLOOD, private_chat=(3, 3.0)))
    chat = telegram.private_chat(ANN)
    for n in range(1, 4):
        telegram.send_text(chat, ANN, f"/imagine fox number {n}")
        await telegram.wait_for_call("sendMediaGroup", chat.id, count=n)
    tasks = await bot.wait_until_settled(count=3)
    assert [t["state"] for t in tasks] == ["delivered"] * 3
    # (Whether the pace stays under the limits is tested on the virtual clock, in
    # test_flood.py: here, requests that leave exactly on the limit's edge may arrive a
    # moment early over a busy loopback, and a 429 is waited out, as from Telegram.)
    albums = [c.json("media")[0]["caption"] for c in telegram.calls_of("sendMediaGroup") if c.ok]
    assert albums == ["fox number 1", "fox number 2", "fox number 3"]


@pytest.mark.postgres_only
async def test_a_change_of_administrators_heard_by_one_replica_is_heard_by_all(
    telegram: FakeTelegram, bot_database: str
) -> None:
    # Two replicas (two database handles, each its own ChatAdmins): the chat_member update
    # reaches one; the other reads the administrators afresh too, not five minutes later.
    group = telegram.group_chat(-100802)
    telegram.set_member_status(group, BOB, "member", announce=False)
    handles = [await Database.open(bot_database) for _ in range(2)]
    replicas = []
    for handle in handles:
        chats = ChatRepository(handle)
        admins = ChatAdmins(tell_everyone=chats.admins_changed)
        await chats.on_admins_changed(admins.forget)
        replicas.append(admins)
    heard, other = replicas
    bot = Bot(BOT_TOKEN, base_url=f"{telegram.url}/bot{{token}}")
    async with bot:
        assert not await other.is_admin(bot, group.id, BOB.id)
        telegram.set_member_status(group, BOB, "administrator", announce=False)
        user = User(BOB.id, BOB.first_name, is_bot=False)
        await heard.changed(group.id, ChatMember(user, "member"), ChatMember(user, "administrator"))
        await eventually(lambda: other.reads == 1 and group.id not in other._known)
        assert await other.is_admin(bot, group.id, BOB.id)
        assert other.reads == 2
    for handle in handles:
        await handle.close()
