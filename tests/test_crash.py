"""kill -9 at each stage of a task, then a restart: every task resumes from SQLite, each
result is delivered once, no upstream task is created twice."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fakes.kie import HELD, FakeKie, Scenario
from fakes.postgres import run_sql
from fakes.replicas import Replica, bot_environment
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import (
    FAST,
    StartBot,
    eventually,
    public_endpoint,
)

ROOT = Path(__file__).resolve().parent.parent
USERS = [FakeUser(6000 + i, f"user{i}", "en") for i in range(3)]


class Killable:
    """The bot as a separate process, to be killed without warning. Under the host's name,
    as a bot started in the test is: a restart takes its tasks back at once."""

    def __init__(
        self, telegram: FakeTelegram, kie: FakeKie, database: Path | str, **env: str
    ) -> None:
        self._replica = Replica(
            socket.gethostname(), bot_environment(telegram, kie, database, **env)
        )
        self._telegram = telegram

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        return self._replica.process

    async def start(self) -> None:
        polls = self._telegram.polls
        await self._replica.start()
        await self._telegram.wait_for(lambda: self._telegram.polls > polls)

    async def kill(self) -> None:
        await self._replica.kill()


def states(database: Path | str) -> list[str]:
    return [row[0] for row in run_sql(database, "SELECT state FROM tasks ORDER BY id")]


async def wait_for_states(database: Path | str, wanted: list[str], timeout: float = 20) -> None:
    """Until the tasks are in these states, in any order (on PostgreSQL, two tasks asked at
    once are recorded in either order)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while sorted(states(database)) != sorted(wanted):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"states {states(database)}, not {wanted}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("stage", ["queued", "running"])
async def test_kill_while_queued_or_running(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, bot_database: Path | str, stage: str
) -> None:
    kie.next_scenarios.append(HELD)  # the first runs until the test ends it
    database = bot_database
    bot = Killable(telegram, kie, database, MAX_CONCURRENT_TASKS="1")
    await bot.start()
    for user in USERS[:2]:
        telegram.send_text(telegram.private_chat(user), user, f"/imagine {user.id}")
    await wait_for_states(database, ["running", "pending"])
    await bot.kill()
    if stage == "running":
        kie.finish(kie.created[0])  # it ends upstream while no bot is there

    restarted = await start_bot(database=database, max_concurrent_tasks=1)
    if stage == "queued":
        kie.finish(kie.created[0])  # it ends once the bot is back
    tasks = await restarted.wait_until_settled(count=2)
    assert [t["state"] for t in tasks] == ["delivered", "delivered"]
    assert len(kie.created) == 2  # the running one resumed, the queued one created once
    albums = [c for c in telegram.calls_of("sendMediaGroup") if c.ok]
    assert sorted(c.params["chat_id"] for c in albums) == sorted(str(u.id) for u in USERS[:2])


async def test_kill_while_the_upstream_is_answering_the_create(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, bot_database: Path | str
) -> None:
    kie.create_gate = asyncio.Event()  # the create's answer waits until the test lets it go
    database = bot_database
    bot = Killable(telegram, kie, database)
    await bot.start()
    user = USERS[0]
    telegram.send_text(telegram.private_chat(user), user, "/imagine lost in the wire")
    await eventually(lambda: kie.created)
    await wait_for_states(database, ["submitting"])
    await bot.kill()
    kie.create_gate.set()  # the answer leaves, to a bot that is gone

    restarted = await start_bot(database=database)
    [task] = await restarted.wait_until_settled()
    # The outcome was unknown: reported and refunded, never created a second time.
    assert (task["state"], task["failure_kind"]) == ("reported", "interrupted")
    assert kie.create_attempts == 1
    kinds = [r["kind"] for r in restarted.rows("SELECT kind FROM ledger ORDER BY id")]
    assert kinds == ["reserve", "refund"]


async def kill_during_the_create_in_callback_mode(
    telegram: FakeTelegram, kie: FakeKie, database: Path | str, prompt: str
) -> dict[str, Any]:
    """Start the bot with a callback URL, kill it while the upstream is answering the create
    request of `/imagine prompt`, and return the endpoint settings to restart it with."""
    kie.create_gate = asyncio.Event()  # the create's answer waits until the test lets it go
    endpoint = public_endpoint()
    bot = Killable(
        telegram,
        kie,
        database,
        PUBLIC_URL=endpoint["public_url"],
        HTTP_PORT=str(endpoint["http_port"]),
    )
    await bot.start()
    user = USERS[0]
    telegram.send_text(telegram.private_chat(user), user, f"/imagine {prompt}")
    await eventually(lambda: kie.created)  # made upstream; its id still on the way
    await wait_for_states(database, ["submitting"])
    await bot.kill()
    kie.create_gate.set()
    return endpoint


async def test_kill_during_the_create_with_callbacks_is_resolved_by_the_callback(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, bot_database: Path | str
) -> None:
    # The task exists upstream, but the bot died before it learnt its id. The upstream
    # still calls the task's callback URL when the task ends, naming it.
    kie.scenario = HELD
    database = bot_database
    endpoint = await kill_during_the_create_in_callback_mode(telegram, kie, database, "lost")

    restarted = await start_bot(database=database, **endpoint)
    kie.finish(kie.created[0])  # it ends once the bot is back: its callback names it
    [task] = await restarted.wait_until_settled()
    assert task["state"] == "delivered"
    assert task["upstream_task_id"] == kie.created[0].task_id
    assert kie.create_attempts == 1
    assert len([c for c in telegram.calls_of("sendMediaGroup") if c.ok]) == 1
    kinds = [r["kind"] for r in restarted.rows("SELECT kind FROM ledger ORDER BY id")]
    assert kinds == ["reserve", "commit"]


async def test_kill_during_the_create_without_a_callback_refunds_when_the_task_would_end(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, bot_database: Path | str
) -> None:
    # No callback ever comes (the request never reached the upstream, or its callback was
    # lost): once the task would have timed out, it is reported and refunded, not re-created.
    kie.scenario = Scenario(duration=0.5, callback="drop")
    database = bot_database
    endpoint = await kill_during_the_create_in_callback_mode(telegram, kie, database, "unheard")

    short = replace(FAST, callback_net=replace(FAST.callback_net, timeout=4.0))
    restarted = await start_bot(database=database, timing=short, **endpoint)
    [task] = await restarted.wait_until_settled()
    assert (task["state"], task["failure_kind"]) == ("reported", "interrupted")
    assert kie.create_attempts == 1
    kinds = [r["kind"] for r in restarted.rows("SELECT kind FROM ledger ORDER BY id")]
    assert kinds == ["reserve", "refund"]


async def test_kill_after_the_album_sends_no_second_album(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, bot_database: Path | str
) -> None:
    database = bot_database
    bot = Killable(telegram, kie, database)
    await bot.start()
    user = USERS[0]
    chat = telegram.private_chat(user)
    telegram.delays["sendMessage"] = 0.0
    telegram.send_text(chat, user, "/imagine deliver me once")
    await telegram.wait_for(lambda: [c for c in telegram.calls_of("sendMediaGroup") if c.ok])
    telegram.delays["sendMessage"] = 3.0  # the buttons are on their way when the bot dies
    await asyncio.sleep(0.3)
    await bot.kill()
    telegram.delays.clear()

    restarted = await start_bot(database=database)
    [task] = await restarted.wait_until_settled()
    assert task["state"] == "delivered"
    assert len([c for c in telegram.calls_of("sendMediaGroup") if c.ok]) == 1
    assert len(kie.created) == 1
