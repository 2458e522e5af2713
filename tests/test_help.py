"""/start, /help and the command menu."""

from __future__ import annotations

import pytest

from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import RunningBot


@pytest.mark.parametrize("command", ["/start", "/help"])
async def test_help_explains_the_commands_with_examples(
    telegram: FakeTelegram, bot: RunningBot, command: str
) -> None:
    ann = FakeUser(1001, "Ann", "en")
    chat = telegram.private_chat(ann)
    telegram.send_text(chat, ann, command)
    [answer] = await telegram.wait_for_call("sendMessage", chat.id)
    text = answer.result["text"]
    assert "/imagine prompt" in text
    assert "/imagine a red fox in snow --ar 3:2" in text
    assert "16:9" in text


async def test_help_in_russian(telegram: FakeTelegram, bot: RunningBot) -> None:
    ivan = FakeUser(1002, "Иван", "ru-RU")
    chat = telegram.private_chat(ivan)
    telegram.send_text(chat, ivan, "/help")
    [answer] = await telegram.wait_for_call("sendMessage", chat.id)
    assert "/imagine рыжая лиса в снегу --ar 3:2" in answer.result["text"]


async def test_command_menu_registered_for_private_chats_and_groups(
    telegram: FakeTelegram, bot: RunningBot
) -> None:
    # Every language the bot speaks has its menu (English is the default, code "").
    codes = ["", "ru", "es", "pt", "de", "uk", "tr", "id"]
    assert set(telegram.commands) == {
        (scope, code) for scope in ("all_private_chats", "all_group_chats") for code in codes
    }
    for commands in telegram.commands.values():
        assert [c["command"] for c in commands] == [
            "imagine",
            "video",
            "animate",
            "upscale",
            "cancel",
            "history",
            "quota",
            "settings",
            "help",
        ]
    assert telegram.commands[("all_group_chats", "ru")][0]["description"] == "Картинки по описанию"
