"""Results by upstream callback to the bot's own HTTP endpoint, polling as the net."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import httpx
import pytest

from bot.core.lifecycle import PollSchedule
from bot.web.signing import callback_signature
from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import FAST, RunningBot, StartBot, eventually, public_endpoint

ANN = FakeUser(1001, "Ann", "en")


def albums(telegram: FakeTelegram) -> list[list[str]]:
    return [
        [m["media"] for m in c.json("media")] for c in telegram.calls_of("sendMediaGroup") if c.ok
    ]


async def imagine(telegram: FakeTelegram, bot: RunningBot, kie: FakeKie) -> str:
    """Send /imagine and wait until the upstream has the task; returns its callback URL."""
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a fox by callback")
    # Until the bot has recorded the upstream's id, a callback may name the task (that is
    # how a create whose answer was lost is found): wait for the record.
    await eventually(lambda: bot.tasks() and bot.tasks()[0]["upstream_task_id"])
    url: str = kie.created[0].request["callBackUrl"]
    return url


async def test_delivered_by_callback_with_one_status_read(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(**public_endpoint())  # the polling net first looks after 20 s
    url = await imagine(telegram, bot, kie)
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert url == f"{bot.settings.public_base}/callbacks/{task['id']}/{task['callback_secret']}"
    assert len(task["callback_secret"]) >= 32
    assert [c.status for c in kie.callbacks] == [200]
    assert kie.created[0].status_reads == 1


async def test_duplicate_callbacks_deliver_one_album(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = Scenario(callback_repeats=4)
    bot = await start_bot(**public_endpoint())
    await imagine(telegram, bot, kie)
    await bot.wait_until_settled()
    await eventually(lambda: len(kie.callbacks) == 4)
    assert [c.status for c in kie.callbacks] == [200] * 4
    assert len(albums(telegram)) == 1
    assert kie.created[0].status_reads == 1


async def test_a_callback_that_beats_the_create_answer_delivers_once(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = Scenario(duration=0.2)
    kie.create_delay = 1.0  # the task is done upstream before the bot learns its id
    bot = await start_bot(**public_endpoint())
    await imagine(telegram, bot, kie)
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert task["upstream_task_id"] == kie.created[0].task_id
    assert kie.create_attempts == 1
    assert len(albums(telegram)) == 1
    assert [c.status for c in kie.callbacks] == [200]


async def test_forged_success_delivers_nothing_and_the_real_result_still_comes(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = Scenario(duration=3600)  # running until the test finishes it
    bot = await start_bot(**public_endpoint())
    url = await imagine(telegram, bot, kie)
    upstream = kie.created[0]
    forged = {
        "code": 200,
        "msg": "success",
        "data": {
            "taskId": upstream.task_id,
            "state": "success",
            "resultJson": json.dumps({"resultUrls": ["https://evil.example/1.png"] * 6}),
        },
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=forged)
    assert response.status_code == 200  # a well-formed hint; its content is not believed
    await eventually(lambda: upstream.status_reads == 1)  # the bot asked the upstream...
    assert bot.tasks()[0]["state"] == "running"  # ...which says it is still running
    kie.finish(upstream)
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert albums(telegram) == [[f"{kie.url}/files/{upstream.task_id}/{i}.png" for i in range(6)]]
    assert upstream.status_reads == 2  # one for the forged hint, one for the real callback


async def test_unknown_task_or_wrong_secret_is_not_found(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # The task runs for the whole test: only a callback could make the bot read its status
    # (the polling net's first look is 20 s away).
    kie.scenario = Scenario(duration=3600)
    bot = await start_bot(**public_endpoint())
    url = await imagine(telegram, bot, kie)
    base = url.rsplit("/", 2)[0]
    body = {"code": 200, "data": {"taskId": kie.created[0].task_id, "state": "success"}}
    async with httpx.AsyncClient() as client:
        # The secret with its last character changed (to another one: a secret ending in
        # "x" once made this "wrong" URL the right one, one run in 64).
        altered = url[:-1] + ("y" if url.endswith("x") else "x")
        for wrong in (altered, f"{base}/999/{url.rsplit('/', 1)[1]}", f"{base}/1"):
            response = await client.post(wrong, json=body)
            assert response.status_code == 404, wrong
        assert kie.created[0].status_reads == 0
        # The right one is taken, and makes the bot read the status once.
        assert (await client.post(url, json=body)).status_code == 200
    await eventually(lambda: kie.created[0].status_reads == 1)
    assert bot.tasks()[0]["state"] == "running"  # a hint, not the truth: still running


async def test_signed_callbacks_are_checked(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.hmac_key = "hmac-key-0f9e8d"
    kie.scenario = Scenario(duration=3600)  # running until the test finishes it
    bot = await start_bot(provider_webhook_hmac_key="hmac-key-0f9e8d", **public_endpoint())
    url = await imagine(telegram, bot, kie)
    task_id = kie.created[0].task_id
    body = {"code": 200, "data": {"taskId": task_id, "state": "success"}}
    now = str(int(time.time()))
    stale = str(int(time.time()) - 3600)
    async with httpx.AsyncClient() as client:
        for headers in (
            {},
            {"X-Webhook-Timestamp": now, "X-Webhook-Signature": "AAAA"},
            {"X-Webhook-Timestamp": now},
            {
                "X-Webhook-Timestamp": stale,
                "X-Webhook-Signature": _sign("hmac-key-0f9e8d", task_id, stale),
            },
            {"X-Webhook-Timestamp": now, "X-Webhook-Signature": _sign("other-key", task_id, now)},
        ):
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code == 401, headers
    assert kie.created[0].status_reads == 0
    kie.finish(kie.created[0])
    [task] = await bot.wait_until_settled()  # the upstream's own signed callback gets through
    assert task["state"] == "delivered"
    assert [c.status for c in kie.callbacks] == [200]


def _sign(key: str, task_id: str, timestamp: str) -> str:
    return callback_signature(key, task_id, timestamp)


async def test_lost_callback_is_caught_by_the_polling_net(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = Scenario(callback="drop", duration=0.3)
    net = PollSchedule(first=0.6, fast=0.3, fast_until=5, medium=0.5, medium_until=10, slow=1)
    bot = await start_bot(timing=replace(FAST, callback_net=net), **public_endpoint())
    await imagine(telegram, bot, kie)
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert kie.callbacks == []
    assert kie.created[0].status_reads >= 1


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{}", {"Content-Type": "text/plain"}, 415),
        (b"not json at all", {"Content-Type": "application/json"}, 400),
        (b"[1, 2, 3]", {"Content-Type": "application/json"}, 400),
        (b'{"code": 200, "data": {}}', {"Content-Type": "application/json"}, 400),
        (
            b'{"code": 200, "data": {"taskId": "someone-else"}}',
            {"Content-Type": "application/json"},
            400,
        ),
        (b'{"pad": "' + b"x" * 1_100_000 + b'"}', {"Content-Type": "application/json"}, 413),
    ],
)
async def test_junk_bodies_are_refused_and_change_nothing(
    telegram: FakeTelegram,
    kie: FakeKie,
    start_bot: StartBot,
    content: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    kie.scenario = Scenario(duration=3600)  # running until the test finishes it
    bot = await start_bot(**public_endpoint())
    url = await imagine(telegram, bot, kie)
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=content, headers=headers)
    assert response.status_code == status
    assert kie.created[0].status_reads == 0
    kie.finish(kie.created[0])
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"


async def test_healthz_reports_the_database_and_tasks_in_flight(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = Scenario(duration=30)
    bot = await start_bot(**public_endpoint())
    await imagine(telegram, bot, kie)
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{bot.settings.public_base}/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": True,
        "replica": bot.settings.instance_id,
        "polling_leader": True,  # polling mode, and with SQLite the one process leads
        "tasks_in_flight": 1,
    }
