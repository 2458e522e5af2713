"""Flood control: PTB's rate limiter with a sense of how backed up the bot is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from telegram.error import BadRequest, RetryAfter
from telegram.ext import ExtBot

from bot.engine.chat import Sending
from bot.ops.metrics import Metrics
from bot.telegram.flood import (
    MESSAGE_METHODS,
    RESULT_SOON,
    SHARED_MARGIN,
    Fenced,
    FloodControl,
    FloodLimits,
    JSONDict,
    about_a_task,
)
from fakes.flood_model import FloodModel
from fakes.kie import HELD, FakeKie, Scenario
from fakes.telegram import WAIT, FakeTelegram, FakeUser
from storage.database import Database
from storage.telegram_pace import Bucket, TelegramPace
from tests.conftest import BOT_TOKEN, LOOSE_FLOOD, StartBot, eventually

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
    await eventually(lambda: flood.pending == 8)
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


class _Recorder:
    """Stands where PTB's HTTP request would go: notes when each call left (on the event
    loop's clock) and holds every message against Telegram's flood limits."""

    def __init__(self) -> None:
        self.model = FloodModel(slack=1e-6)  # float dust only: one clock here
        self.sent: list[tuple[str, int | None, float]] = []

    async def call(self, endpoint: str, data: dict[str, Any], flood: FloodControl) -> None:
        async def request(*args: Any, **kwargs: Any) -> JSONDict:
            now = asyncio.get_running_loop().time()
            chat_id = data.get("chat_id")
            if endpoint in MESSAGE_METHODS:
                assert isinstance(chat_id, int)
                assert self.model.admit(chat_id, now) is None, f"{endpoint} to {chat_id} at {now}"
            self.sent.append((endpoint, chat_id, now))
            return {}

        await flood.process_request(request, (), {}, endpoint, data, None)

    def moments(self, endpoint: str, chat_id: int | None = None) -> list[float]:
        return [
            round(at, 6)
            for method, chat, at in self.sent
            if method == endpoint and (chat_id is None or chat == chat_id)
        ]


async def _schedule(calls: list[tuple[str, dict[str, Any]]]) -> _Recorder:
    """Make `calls` at one instant through production's flood control."""
    flood = FloodControl(Metrics(), max_retries=0)
    telegram = _Recorder()
    await asyncio.gather(*(telegram.call(endpoint, data, flood) for endpoint, data in calls))
    started = min(at for *_, at in telegram.sent)
    telegram.sent = [(method, chat, at - started) for method, chat, at in telegram.sent]
    return telegram


# On the virtual clock: the schedule the pacer makes, not when packets happened to arrive.


@pytest.mark.looptime
async def test_a_private_chat_gets_a_burst_of_three_then_one_a_second() -> None:
    telegram = await _schedule([("sendMessage", {"chat_id": ANN.id})] * 10)
    assert telegram.model.refused == 0
    assert telegram.moments("sendMessage") == pytest.approx([0, 0, 0, 1, 2, 3, 4, 5, 6, 7])


@pytest.mark.looptime
async def test_a_group_gets_a_burst_of_three_then_seventeen_a_minute() -> None:
    telegram = await _schedule([("editMessageText", {"chat_id": -100500})] * 30)
    assert telegram.model.refused == 0  # never more than 20 in any minute
    moments = telegram.moments("editMessageText")
    assert moments[:3] == pytest.approx([0, 0, 0])
    assert moments[3:] == pytest.approx([i * 60 / 17 for i in range(1, 28)])


@pytest.mark.looptime
async def test_all_chats_together_keep_to_thirty_a_second() -> None:
    calls = [("sendMediaGroup", {"chat_id": 3000 + i}) for i in range(300)]
    calls += [("sendMessage", {"chat_id": ANN.id})] * 10
    calls += [("sendMessage", {"chat_id": -100500})] * 30
    telegram = await _schedule(calls)
    assert telegram.model.refused == 0
    moments = sorted(at for *_, at in telegram.sent)
    # 3 at once, then 27 a second: the 300 albums and the first messages of the two chats.
    assert moments[302] == pytest.approx((303 - 3) / 27)


@pytest.mark.looptime
async def test_calls_that_are_not_messages_never_wait_behind_a_chats_messages() -> None:
    flood = FloodControl(Metrics(), max_retries=0)
    telegram = _Recorder()
    group = -100500
    loop = asyncio.get_running_loop()
    started = loop.time()
    messages = [
        asyncio.create_task(telegram.call("sendMessage", {"chat_id": group}, flood))
        for _ in range(8)
    ]
    await asyncio.sleep(1)  # the group's bucket is empty now, and five messages wait
    assert flood.busy_for(group)
    others = [
        telegram.call("answerCallbackQuery", {"callback_query_id": "1"}, flood),
        telegram.call("getChatAdministrators", {"chat_id": group}, flood),
        telegram.call("getChatMember", {"chat_id": group, "user_id": 1}, flood),
        telegram.call("deleteMessage", {"chat_id": group, "message_id": 1}, flood),
        telegram.call("sendChatAction", {"chat_id": group, "action": "typing"}, flood),
    ]
    await asyncio.gather(*others)
    assert loop.time() - started < 1.2  # the overall pace only: a few milliseconds each
    assert len(telegram.moments("sendMessage")) == 3  # the queued messages still wait
    await asyncio.gather(*messages)
    assert telegram.model.refused == 0


@pytest.mark.looptime
async def test_a_press_is_answered_ahead_of_results_waiting_for_the_overall_limit() -> None:
    flood = FloodControl(Metrics(), max_retries=0)
    telegram = _Recorder()
    loop = asyncio.get_running_loop()
    started = loop.time()
    # 90 albums to 90 chats: three seconds of Telegram's overall limit.
    albums = [
        asyncio.create_task(telegram.call("sendMediaGroup", {"chat_id": 5000 + i}, flood))
        for i in range(90)
    ]
    await asyncio.sleep(0.5)
    await telegram.call("answerCallbackQuery", {"callback_query_id": "7"}, flood)
    assert loop.time() - started < 0.6
    await asyncio.gather(*albums)
    assert telegram.model.refused == 0


async def test_a_result_ready_before_its_status_message_left_goes_without_one(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # One message every three seconds in this chat: the second task's status message waits
    # its turn, and its result is ready first (a task of 0.2 s: fifteen times as long to
    # spare on a busy machine). Sending it, then removing it, would cost the chat two of
    # its scarce messages and delay both albums.
    kie.scenario = Scenario(duration=0.2)
    bot = await start_bot(flood_limits=replace(LOOSE_FLOOD, private_chat=(1, 3.0)))
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine first")
    await eventually(lambda: bot.tasks())  # recorded first (PostgreSQL takes any order)
    telegram.send_text(chat, ANN, "/imagine second")
    first, second = await bot.wait_until_settled(count=2, timeout=60)
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
    # In the order the results became ready: both at about the same moment.
    assert sorted(albums) == ["first", "second"]


async def test_a_result_goes_ahead_of_status_messages_waiting_for_the_chat(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # One message every three seconds in this chat. The first task's album is ready (a task
    # of 0.2 s) while the other two tasks' status messages still wait their turn: the album
    # goes first. The other two run until the test ends, so no clock decides the order but
    # the chat's pace.
    kie.scenario = Scenario(duration=0.2)
    kie.by_prompt.update(slow=HELD, slower=HELD)
    bot = await start_bot(flood_limits=replace(LOOSE_FLOOD, private_chat=(1, 3.0)))
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine quick")
    await telegram.wait_for_call("sendMessage", chat.id)  # its status message: the first
    for prompt in ("slow", "slower"):
        telegram.send_text(chat, ANN, f"/imagine {prompt}")

    def sent() -> list[tuple[str, str]]:
        return [
            (c.method, "buttons" if "reply_markup" in c.params else "")
            for c in telegram.calls
            if c.ok
            and c.method in ("sendMessage", "sendMediaGroup")
            and c.params.get("chat_id") == str(chat.id)
        ]

    await eventually(lambda: len(sent()) >= 5, timeout=60)
    assert sent()[:5] == [
        ("sendMessage", ""),  # the first task's status message
        ("sendMediaGroup", ""),  # its album, ahead of the other two status messages
        ("sendMessage", "buttons"),
        ("sendMessage", ""),
        ("sendMessage", ""),
    ]
    assert [t["state"] for t in bot.tasks()] == ["delivered", "running", "running"]


async def test_with_replicas_calls_that_are_not_messages_count_in_the_shared_pace_too(
    bot_database: Path | str,
) -> None:
    """Every call counts against the bot's budget shared by the replicas, not only
    messages: an answer to a button press, or a deleted message, books its moment in the
    pace of all chats and goes at once (Telegram's limits are on messages; a status
    message's removal must not wait behind every replica's albums). A message after them
    waits for its own moment, that much later."""
    database = await Database.open(bot_database)
    pace = TelegramPace(database)
    # All chats together: a burst of 3, then (shared, at 0.9) one every 111 s.
    limits = FloodLimits(overall=(3, 300.0))
    flood = FloodControl(Metrics(), max_retries=0, limits=limits, shared=pace)
    sent: list[str] = []

    async def call(endpoint: str) -> None:
        async def request(*args: Any, **kwargs: Any) -> bool:
            sent.append(endpoint)
            return True

        await flood.process_request(request, (), {}, endpoint, {"chat_id": 5}, None)

    async def booked() -> float:
        row = await database.fetch_one("SELECT tat FROM telegram_pace WHERE key = 0")
        return float(row[0]) if row else 0.0

    async def booked_past(moment: float) -> float:
        for _ in range(int(WAIT / 0.02)):
            if (now := await booked()) > moment:
                return now
            await asyncio.sleep(0.02)
        raise TimeoutError("never booked")

    every = Bucket(3, 3 / 300.0 * SHARED_MARGIN)
    for _ in range(3):  # another replica spent the burst just now
        await pace.reserve(None, every, every, now=time.time())
    before = await booked()

    await call("answerCallbackQuery")
    assert sent == ["answerCallbackQuery"]  # at once, though the pace is spent
    after_answer = await booked_past(before)
    assert after_answer == pytest.approx(before + 1 / every.rate)

    await call("deleteMessage")
    assert sent == ["answerCallbackQuery", "deleteMessage"]
    after_delete = await booked_past(after_answer)
    assert after_delete == pytest.approx(after_answer + 1 / every.rate)

    # A message waits for its own moment, 111 s on (books it only once it is near: below).
    waiting = asyncio.create_task(call("sendMessage"))
    await eventually(lambda: flood.pending == 1)
    assert "sendMessage" not in sent
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await database.close()


async def _booked_ahead(database: Database, every: Bucket, free_at: float) -> float:
    """The pace of all chats as another replica left it: booked up to `free_at` (the next
    message may leave then). Its `tat`."""
    tat = free_at - 1 / every.rate + every.capacity / every.rate
    await database.execute(
        "INSERT INTO telegram_pace (key, tat, step) VALUES (0, ?, ?)", (tat, 1 / every.rate)
    )
    return tat


async def test_with_replicas_a_result_books_its_moment_only_once_it_is_near(
    bot_database: Path | str,
) -> None:
    """A result is booked in the replicas' shared pace only once its moment is within
    RESULT_SOON, never far ahead: a replica killed (or frozen) with results booked far
    ahead would leave every replica waiting for moments nobody uses (a kill every 10 s
    once made 1,000 albums take 278 s to settle instead of 87 s)."""
    database = await Database.open(bot_database)
    pace = TelegramPace(database)
    limits = FloodLimits(overall=(30, 1.0))  # shared: 27 a second, 30 at once
    flood = FloodControl(Metrics(), max_retries=0, limits=limits, shared=pace)
    every = Bucket(30, 30 / 1.0 * SHARED_MARGIN)
    sent: list[float] = []

    async def request(*args: Any, **kwargs: Any) -> bool:
        sent.append(time.time())
        return True

    # Another replica booked the pace of all chats up to 3 s from now.
    ahead = 3.0
    start = time.time()
    tat = await _booked_ahead(database, every, start + ahead)
    assert await pace.next_free(None, every, every, now=start) == pytest.approx(start + ahead)

    result = asyncio.create_task(
        flood.process_request(request, (), {}, "sendMessage", {"chat_id": 5}, None)
    )
    booked_at = None
    while booked_at is None:
        row = await database.fetch_one("SELECT tat FROM telegram_pace WHERE key = 0")
        assert row is not None
        if float(row[0]) > tat:
            booked_at = time.time()
        else:
            await asyncio.sleep(0.01)
    await result
    # Booked no earlier than RESULT_SOON before its moment, and sent at that moment.
    assert booked_at >= start + ahead - RESULT_SOON - 0.05
    assert sent[0] >= start + ahead - 0.05
    await database.close()


async def test_with_replicas_a_message_asks_whether_its_task_is_still_held_before_its_moment(
    bot_database: Path | str,
) -> None:
    """With replicas, whether the task is still this process's is asked once the message's
    moment is booked, before it comes, not as it comes: when the database was slow to
    answer, messages left late and together with the next ones, past Telegram's limit on
    all chats (bench.backlog: 290 429s in 30 s while 6,000 tasks waited; 0 after)."""
    database = await Database.open(bot_database)
    pace = TelegramPace(database)
    limits = FloodLimits(overall=(30, 1.0))
    flood = FloodControl(Metrics(), max_retries=0, limits=limits, shared=pace)
    every = Bucket(30, 30 / 1.0 * SHARED_MARGIN)
    asked: list[float] = []
    sent: list[float] = []

    async def still_mine() -> bool:
        asked.append(time.time())
        return True

    async def request(*args: Any, **kwargs: Any) -> bool:
        sent.append(time.time())
        return True

    # Another replica booked the pace of all chats up to 1.5 s from now.
    ahead = 1.5
    start = time.time()
    await _booked_ahead(database, every, start + ahead)
    sending = Sending(still_mine)
    with about_a_task(urgent=True, still_mine=still_mine, ticket=sending):
        await flood.process_request(request, (), {}, "sendMessage", {"chat_id": 5}, None)
    moment = start + ahead
    assert len(sent) == 1
    assert sent[0] >= moment - 0.05
    # Asked before its moment (and again as it left); the old code asked only once it came.
    assert len(asked) == 2
    assert asked[0] < moment - 0.05
    assert sending.gone
    await database.close()


async def test_a_message_about_a_task_taken_over_is_never_sent(bot_database: Path | str) -> None:
    database = await Database.open(bot_database)
    flood = FloodControl(
        Metrics(), max_retries=0, limits=FloodLimits(), shared=TelegramPace(database)
    )
    sent: list[float] = []

    async def taken_over() -> bool:
        return False

    async def request(*args: Any, **kwargs: Any) -> bool:
        sent.append(time.time())
        return True

    sending = Sending(taken_over)
    with (
        about_a_task(urgent=True, still_mine=taken_over, ticket=sending),
        pytest.raises(Fenced),
    ):
        await flood.process_request(request, (), {}, "sendMessage", {"chat_id": 5}, None)
    assert not sent
    assert not sending.gone
    await database.close()


@pytest.mark.looptime
async def test_a_429_holds_its_chat_and_its_call_not_every_other_chat() -> None:
    """Telegram answers a message with a 429 (retry after 5 s): that call, and that chat,
    wait 5 s; a message to another chat leaves at once. PTB's AIORateLimiter held every
    call of the bot for the wait and then let them all go together, past their paces."""
    flood = FloodControl(Metrics(), max_retries=2)
    sent: list[tuple[int, float]] = []
    refused = [ANN.id]

    def request_to(chat_id: int) -> Callable[..., Coroutine[Any, Any, bool]]:
        async def request(*args: Any, **kwargs: Any) -> bool:
            if chat_id in refused:
                refused.remove(chat_id)
                raise RetryAfter(5)
            sent.append((chat_id, asyncio.get_running_loop().time()))
            return True

        return request

    async def message(chat_id: int, after: float) -> None:
        await asyncio.sleep(after)
        await flood.process_request(
            request_to(chat_id), (), {}, "sendMessage", {"chat_id": chat_id}, None
        )

    start = asyncio.get_running_loop().time()
    await asyncio.gather(message(ANN.id, 0), message(2002, 0.5), message(ANN.id, 1.0))
    moments = [(chat, round(at - start, 1)) for chat, at in sent]
    # The other chat at once; Ann's first message retried at the wait's end, her second
    # not before it either (then her pace of one a second goes on).
    assert moments[0] == (2002, 0.5)
    assert sorted(at for chat, at in moments if chat == ANN.id) == [5.1, 6.1]


async def test_with_replicas_a_429_holds_its_chat_on_every_replica(
    bot_database: Path | str,
) -> None:
    """A 429 one replica got for a chat holds the chat in the replicas' shared pace: the
    next message to it, from any replica, leaves no earlier than the wait's end."""
    database = await Database.open(bot_database)
    pace = TelegramPace(database)
    flood = FloodControl(Metrics(), max_retries=1, shared=pace)
    chat = Bucket(3, 3 / 3.0 * SHARED_MARGIN)  # production's private chat, as shared
    every = Bucket(3, 27 * SHARED_MARGIN)
    refused_at: list[float] = []

    async def request(*args: Any, **kwargs: Any) -> bool:
        if not refused_at:
            refused_at.append(time.time())
            raise RetryAfter(3)
        return True

    first = asyncio.create_task(
        flood.process_request(request, (), {}, "sendMessage", {"chat_id": 77}, None)
    )

    # Seen by another replica before the wait is over: its next free moment for the chat.
    held = False
    while not held and (not refused_at or time.time() < refused_at[0] + 2.5):
        free = await pace.next_free(77, chat, every, now=time.time())
        held = bool(refused_at) and free >= refused_at[0] + 3.0
        await asyncio.sleep(0.01)
    assert held
    assert await first  # and the call itself, retried after the wait
    await database.close()
