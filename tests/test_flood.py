"""Flood control: PTB's rate limiter with a sense of how backed up the bot is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from telegram.error import BadRequest
from telegram.ext import ExtBot

from bot.flood import FloodControl
from bot.metrics import Metrics
from tests.conftest import BOT_TOKEN, LOOSE_FLOOD, StartBot
from tests.fakes.kie import FakeKie, Scenario
from tests.fakes.telegram import FakeTelegram, FakeUser

ANN = FakeUser(1001, "Ann", "en")


@pytest.fixture
async def limited(
    telegram: FakeTelegram,
) -> AsyncIterator[tuple[ExtBot[int], FloodControl, Metrics]]:
    metrics = Metrics()
    flood = FloodControl(metrics, max_retries=2, busy_at=5, limits=LOOSE_FLOOD)
    bot: ExtBot[int] = ExtBot(
        BOT_TOKEN, base_url=f"{telegram.url}/bot{{token}}", rate_limiter=flood
    )
    async with bot:
        yield bot, flood, metrics


async def test_busy_while_calls_pile_up(
    telegram: FakeTelegram, limited: tuple[ExtBot[int], FloodControl, Metrics]
) -> None:
    bot, flood, _ = limited
    chat = telegram.private_chat(ANN)
    telegram.delays["sendMessage"] = 0.5
    sends = [asyncio.create_task(bot.send_message(chat.id, f"m{i}")) for i in range(8)]
    await asyncio.sleep(0.2)
    assert flood.pending == 8
    assert flood.busy
    await asyncio.gather(*sends)
    assert flood.pending == 0
    assert not flood.busy


async def test_errors_are_counted_and_a_429_is_waited_out(
    telegram: FakeTelegram, limited: tuple[ExtBot[int], FloodControl, Metrics]
) -> None:
    bot, _, metrics = limited
    chat = telegram.private_chat(ANN)
    telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    await bot.send_message(chat.id, "after the wait")
    with pytest.raises(BadRequest):
        await bot.send_message(424242, "nowhere")
    text = metrics.render().decode()
    assert 'imagine_telegram_errors_total{kind="BadRequest"} 1.0' in text
    assert "RetryAfter" not in text  # waited out, not an error
    assert [c.ok for c in telegram.calls_of("sendMessage", chat.id)] == [False, True]


async def test_production_pace_keeps_under_telegrams_limits(telegram: FakeTelegram) -> None:
    telegram.flood_limits = True
    flood = FloodControl(Metrics(), max_retries=0)  # production limits; no retry to hide a 429
    bot: ExtBot[int] = ExtBot(
        BOT_TOKEN, base_url=f"{telegram.url}/bot{{token}}", rate_limiter=flood
    )
    async with bot:
        chat = telegram.private_chat(ANN)
        others = [telegram.private_chat(FakeUser(2000 + i, f"u{i}")) for i in range(40)]
        sends = [bot.send_message(chat.id, f"same chat {i}") for i in range(4)]
        sends += [bot.send_message(other.id, "one each") for other in others]
        await asyncio.gather(*sends)
    assert telegram.flood_errors == 0
    same_chat = [c.at for c in telegram.calls_of("sendMessage", chat.id)]
    assert same_chat[-1] - same_chat[0] >= 4.0  # one a second and a half, after the first


async def test_a_result_ready_before_its_status_message_left_goes_without_one(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # One message a second in this chat: the second task's status message waits its turn,
    # and its result is ready first. Sending it, then removing it, would cost the chat two
    # of its scarce messages and delay both albums.
    kie.scenario = Scenario(duration=0.2)
    bot = await start_bot(flood_limits=replace(LOOSE_FLOOD, private_chat=(1, 1.0)))
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine first")
    telegram.send_text(chat, ANN, "/imagine second")
    first, second = await bot.wait_until_settled(count=2, timeout=20)
    assert (first["state"], second["state"]) == ("delivered", "delivered")
    assert first["status_message_id"] is not None
    assert second["status_message_id"] is None
    statuses = [
        c
        for c in telegram.calls_of("sendMessage", chat.id)
        if c.ok and "reply_markup" not in c.params
    ]
    assert len(statuses) == 1
    assert len(telegram.calls_of("deleteMessage")) == 1
    albums = [c.json("media")[0]["caption"] for c in telegram.calls_of("sendMediaGroup") if c.ok]
    assert albums == ["first", "second"]


async def test_a_result_goes_ahead_of_status_messages_waiting_for_the_chat(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # One message a second in this chat. The first task's album is ready while the other
    # two tasks' status messages still wait their turn: the album goes first.
    kie.next_scenarios += [Scenario(duration=0.2), Scenario(duration=4.0), Scenario(duration=4.0)]
    bot = await start_bot(flood_limits=replace(LOOSE_FLOOD, private_chat=(1, 1.0)))
    chat = telegram.private_chat(ANN)
    for prompt in ("quick", "slow", "slower"):
        telegram.send_text(chat, ANN, f"/imagine {prompt}")
    tasks = await bot.wait_until_settled(count=3, timeout=30)
    assert [t["state"] for t in tasks] == ["delivered"] * 3
    sent = [
        (c.method, "buttons" if "reply_markup" in c.params else "")
        for c in telegram.calls
        if c.ok
        and c.method in ("sendMessage", "sendMediaGroup")
        and c.params.get("chat_id") == str(chat.id)
    ]
    assert sent[:5] == [
        ("sendMessage", ""),  # the first task's status message
        ("sendMediaGroup", ""),  # its album, ahead of the other two status messages
        ("sendMessage", "buttons"),
        ("sendMessage", ""),
        ("sendMessage", ""),
    ]
