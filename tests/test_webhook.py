"""Telegram webhook mode: updates arrive on the bot's own endpoint, guarded by a secret."""

from __future__ import annotations

import httpx

from fakes.kie import FakeKie
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import StartBot, public_endpoint

ANN = FakeUser(1001, "Ann", "en")


async def test_updates_by_webhook_reach_the_bot(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(telegram_webhook=True, **public_endpoint())
    assert telegram.webhook is not None
    assert telegram.webhook.url.startswith(f"{bot.settings.public_base}/telegram/")
    secret = telegram.webhook.url.rsplit("/", 1)[1]
    assert telegram.webhook.secret == secret
    assert len(secret) >= 32
    assert telegram.webhook.allowed_updates == [
        "message",
        "callback_query",
        "chat_member",
        "my_chat_member",
        "pre_checkout_query",
        "inline_query",
        "chosen_inline_result",
    ]
    assert telegram.polls == 0

    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a fox by webhook")
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert [status for _, status in telegram.webhook_deliveries] == [200]


async def test_requests_without_the_secret_token_are_refused(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(telegram_webhook=True, **public_endpoint())
    assert telegram.webhook is not None
    url = telegram.webhook.url
    update = {
        "update_id": 99,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 1001, "type": "private"},
            "from": {"id": 1001, "is_bot": False, "first_name": "Mallory"},
            "text": "/imagine forged",
            "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
        },
    }
    async with httpx.AsyncClient() as client:
        no_token = await client.post(url, json=update)
        wrong_token = await client.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}
        )
        wrong_path = await client.post(
            f"{bot.settings.public_base}/telegram/guess",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": telegram.webhook.secret or ""},
        )
    assert (no_token.status_code, wrong_token.status_code, wrong_path.status_code) == (
        403,
        403,
        404,
    )
    assert bot.tasks() == []
    assert kie.create_attempts == 0


async def test_updates_sent_while_the_bot_is_down_arrive_after_a_restart(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    endpoint = public_endpoint()
    first = await start_bot(telegram_webhook=True, **endpoint)
    await first.stop()
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine while you were out")
    await telegram.wait_for(lambda: telegram.webhook_deliveries)  # refused: nobody listens
    assert telegram.webhook_deliveries[0][1] is None

    second = await start_bot(telegram_webhook=True, **endpoint)
    [task] = await second.wait_until_settled()
    assert task["state"] == "delivered"
    assert task["prompt"] == "while you were out"


async def test_an_update_is_answered_only_once_it_is_recorded(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    """A replica killed after answering 200 must have nothing left to lose: by the time
    Telegram hears 200 for an `/imagine`, its task is in the database (and a 200 never
    comes for an update still in a queue in memory)."""
    bot = await start_bot(telegram_webhook=True, **public_endpoint())
    assert telegram.webhook is not None
    telegram.private_chat(ANN)
    update = {
        "update_id": 100,
        "message": {
            "message_id": 5,
            "date": 0,
            "chat": {"id": ANN.id, "type": "private", "first_name": ANN.first_name},
            "from": {"id": ANN.id, "is_bot": False, "first_name": ANN.first_name},
            "text": "/imagine recorded before the answer",
            "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
        },
    }
    async with httpx.AsyncClient(timeout=60) as client:
        answer = await client.post(
            telegram.webhook.url,
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": telegram.webhook.secret or ""},
        )
    assert answer.status_code == 200
    [task] = bot.tasks()  # at once: no waiting for it
    assert task["prompt"] == "recorded before the answer"
    await bot.wait_until_settled()
