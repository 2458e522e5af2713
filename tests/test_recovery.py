"""A restart resumes every unfinished task from SQLite and repeats nothing."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import httpx
import pytest

from fakes.kie import HELD, FakeKie, Scenario
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import FAST, FakeClock, StartBot, eventually

ANN = FakeUser(1001, "Ann", "en")


async def test_a_running_task_is_delivered_after_a_restart(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = HELD
    first = await start_bot()
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine survive a restart")
    await eventually(lambda: kie.created)
    await eventually(lambda: first.tasks()[0]["state"] == "running")
    await first.stop()
    assert first.tasks()[0]["state"] == "running"
    assert not any(c.ok for c in telegram.calls_of("sendMediaGroup"))

    second = await start_bot()
    kie.finish(kie.created[0])
    [task] = await second.wait_until_settled()
    assert task["state"] == "delivered"
    assert len(kie.created) == 1  # resumed, not created again
    assert len([c for c in telegram.calls_of("sendMediaGroup") if c.ok]) == 1
    # The status message of the first run was reused and removed at the end.
    assert len([c for c in telegram.calls_of("sendMessage") if c.ok]) == 2  # status + buttons
    assert telegram.message(chat.id, task["status_message_id"]).deleted


async def test_finished_tasks_are_left_alone_after_a_restart(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    first = await start_bot()
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine once")
    await first.wait_until_settled()
    await first.stop()
    calls_before = len(telegram.calls)

    second = await start_bot()
    telegram.send_text(chat, ANN, "/help")
    await telegram.wait_for(
        lambda: any("Grok Imagine" in c.params["text"] for c in telegram.calls_of("sendMessage"))
    )
    await second.stop()
    later = [c.method for c in telegram.calls[calls_before:]]
    assert "sendMediaGroup" not in later
    assert len(kie.created) == 1


async def crash_with(
    start_bot: StartBot,
    telegram: FakeTelegram,
    alive: dict[str, float] | None = None,
    **row: object,
) -> None:
    """Leave a task in the database as a crash at that point would, with the bot stopped;
    `alive`: other replicas' heartbeats (name → alive until)."""
    bot = await start_bot()
    await bot.stop()
    for name, until in (alive or {}).items():
        bot.rows("INSERT INTO replicas (name, alive_until) VALUES (?, ?)", (name, until))
    values = {
        "kind": "text_to_image",
        "account": "kie",
        "chat_id": ANN.id,
        "chat_type": "private",
        "user_id": ANN.id,
        "lang": "en",
        "prompt": "after a crash",
        "aspect_ratio": "1:1",
        "created_at": time.time(),
        "updated_at": time.time(),
        **row,
    }
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    bot.rows(f"INSERT INTO tasks ({names}) VALUES ({marks})", tuple(values.values()))


async def test_crash_before_the_upstream_was_asked_submits_it(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    telegram.private_chat(ANN)
    await crash_with(start_bot, telegram, state="pending")
    bot = await start_bot()
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert len(kie.created) == 1


async def test_crash_during_creation_is_not_blindly_repeated(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    telegram.private_chat(ANN)
    await crash_with(start_bot, telegram, state="submitting")
    bot = await start_bot()
    [task] = await bot.wait_until_settled()
    assert (task["state"], task["failure_kind"]) == ("reported", "interrupted")
    assert kie.create_attempts == 0
    [notice] = [c for c in telegram.calls_of("sendMessage") if c.ok]
    assert notice.params["text"].startswith(
        "😔 The bot restarted while this request was being sent"
    )


async def test_crash_after_the_album_sends_only_the_buttons(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    chat = telegram.private_chat(ANN)
    sent_album = telegram.send_text(chat, ANN, "pretend this is the album")
    urls = json.dumps([f"{kie.url}/files/x/{i}.png" for i in range(6)])
    await crash_with(
        start_bot,
        telegram,
        state="delivering",
        upstream_task_id="x",
        result_urls=urls,
        album_message_ids=json.dumps([sent_album["message_id"]]),
    )
    bot = await start_bot()
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert telegram.calls_of("sendMediaGroup") == []
    [buttons] = [c for c in telegram.calls_of("sendMessage") if c.ok]
    assert buttons.json("reply_parameters")["message_id"] == sent_album["message_id"]
    assert len(buttons.json("reply_markup")["inline_keyboard"][0]) == 3


async def test_crash_after_a_recorded_failure_reports_it(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    telegram.private_chat(ANN)
    await crash_with(
        start_bot, telegram, state="failed", failure_kind="generation", failure_detail="boom"
    )
    bot = await start_bot()
    [task] = await bot.wait_until_settled()
    assert task["state"] == "reported"
    [notice] = [c for c in telegram.calls_of("sendMessage") if c.ok]
    assert notice.params["text"].startswith("😔 Could not make the images: boom")


async def test_a_task_another_process_holds_is_left_to_it_until_its_claim_runs_out(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    clock = FakeClock(time.time())
    telegram.private_chat(ANN)
    await crash_with(
        start_bot,
        telegram,
        alive={"replica-2": clock.now + 60},
        state="pending",
        claimed_by="replica-2",
    )
    bot = await start_bot(clock=clock, timing=replace(FAST, lease=0.3))
    # Its keeper looks every 0.1 s; replica-2's heartbeat is alive: the task is not touched.
    await asyncio.sleep(0.5)
    assert kie.created == []
    assert bot.tasks()[0]["claimed_by"] == "replica-2"
    clock.advance(61)  # replica-2 died: its heartbeat runs out, and this process picks it up
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert task["claimed_by"] == bot.settings.instance_id
    await bot.stop()
    # A stop lets go of what it held: its heartbeat is gone, so any claim left is free.
    assert [row[0] for row in bot.rows("SELECT name FROM replicas")] == ["replica-2"]


async def test_a_process_whose_lease_was_taken_stops_driving_the_task(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    # This process could not renew in time (a stalled loop, the database away) and another
    # claimed the task meanwhile: only one may drive it, the one holding the lease.
    kie.scenario = Scenario(duration=60)
    bot = await start_bot(timing=replace(FAST, lease=0.3), max_concurrent_tasks=1)
    telegram.send_text(telegram.private_chat(ANN), ANN, "/imagine held elsewhere")
    await eventually(lambda: [t for t in bot.tasks() if t["state"] == "running"])
    await bot.write(
        "INSERT INTO replicas (name, alive_until) VALUES ('replica-2', ?)", (time.time() + 600,)
    )
    await bot.write("UPDATE tasks SET claimed_by = 'replica-2'")
    await eventually(lambda: "taken over by another process" in caplog.text)
    async with httpx.AsyncClient() as client:
        for _ in range(500):  # its worker ends (nothing announces it)
            health = (await client.get(bot.http_url("/healthz"))).json()
            if health["tasks_in_flight"] == 0:
                break
            await asyncio.sleep(0.02)
    assert health["tasks_in_flight"] == 0
    [task] = bot.tasks()
    assert (task["state"], task["claimed_by"]) == ("running", "replica-2")
    # Regression: the slot the task held in this process's line was never freed, so once
    # replica-2 finished it, this process's one slot stayed taken and a new task waited
    # for good (found by the CI loop in test_replicas).
    await bot.write("UPDATE tasks SET state = 'delivered', claimed_by = NULL")
    kie.scenario = Scenario(duration=0.1)
    telegram.send_text(telegram.private_chat(ANN), ANN, "/imagine next")
    [_, after] = await bot.wait_until_settled(count=2)
    assert after["state"] == "delivered"
