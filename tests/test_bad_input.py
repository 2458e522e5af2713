"""Bad input gets a short, clear reply, costs nothing, and creates no task."""

from __future__ import annotations

import pytest

from fakes.kie import FakeKie
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import RunningBot

ANN = FakeUser(1001, "Ann", "en")


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("/imagine", "Tell me what to draw after the command"),
        ("/imagine    ", "Tell me what to draw after the command"),
        ("/imagine --ar 3:2", "Tell me what to draw after the command"),
        ("/imagine " + "x" * 5001, "The prompt is 5001 characters long; the limit is 5000"),
        ("/imagine a fox --ar 4:3", "Unknown aspect ratio 4:3. Use one of: 1:1, 2:3, 3:2"),
        ("/imagine a fox --ar <b>", "Unknown aspect ratio <b>. Use one of"),
        ("/imagine a fox --ar", "--ar needs a value"),
        ("/imagine a fox --ar 1:1 --ar 2:3", "Give --ar only once"),
    ],
)
async def test_refused_without_a_task(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot, command: str, reply: str
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, command)
    [answer] = await telegram.wait_for_call("sendMessage", chat.id)
    assert answer.result["text"].startswith(reply)
    assert bot.tasks() == []
    assert kie.create_attempts == 0


async def test_refusal_in_russian(telegram: FakeTelegram, kie: FakeKie, bot: RunningBot) -> None:
    ivan = FakeUser(1002, "Иван", "ru")
    chat = telegram.private_chat(ivan)
    telegram.send_text(chat, ivan, "/imagine")
    [answer] = await telegram.wait_for_call("sendMessage", chat.id)
    assert answer.result["text"].startswith("Напишите после команды, что нарисовать")


async def test_refusal_in_a_group_answers_the_command(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    group = telegram.group_chat(-100600)
    sent = telegram.send_text(group, ANN, "/imagine a fox --ar 5:4")
    [answer] = await telegram.wait_for_call("sendMessage", group.id)
    assert answer.json("reply_parameters")["message_id"] == sent["message_id"]
    assert bot.tasks() == []
