"""When generation fails, the user gets one clear message in place of the status."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import FAST, FakeClock, RunningBot, StartBot, failure_notice

ANN = FakeUser(1001, "Ann", "en")


async def failure_text(telegram: FakeTelegram, bot: RunningBot, chat_id: int) -> str:
    """The failure notice: the status message, edited into it (or a reply of its own, if
    the failure came before the status message left)."""
    [task] = await bot.wait_until_settled()
    assert task["state"] == "reported"
    assert not any(c.ok for c in telegram.calls_of("sendMediaGroup"))
    return failure_notice(telegram, chat_id, task)


async def test_upstream_generation_failure_shows_its_reason_escaped(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.scenario = Scenario(outcome="fail", fail_code="400", fail_msg="Prompt <flagged> & blocked")
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine something")
    text = await failure_text(telegram, bot, chat.id)
    assert text.startswith("😔 Could not make the images: Prompt <flagged> & blocked")
    assert "Traceback" not in text
    [task] = bot.tasks()
    assert (task["failure_kind"], task["failure_detail"]) == (
        "generation",
        "Prompt <flagged> & blocked",
    )


@pytest.mark.parametrize(
    ("command", "named"),
    [("/imagine a fox", "the images"), ("/video a fox running", "the video")],
)
async def test_a_failure_names_what_failed(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot, command: str, named: str
) -> None:
    kie.scenario = Scenario(outcome="fail", fail_code="400", fail_msg="File type not supported")
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, command)
    text = await failure_text(telegram, bot, chat.id)
    assert text.startswith(f"😔 Could not make {named}: File type not supported\n")


async def test_upstream_validation_error_is_a_rejection(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.fail_creates(422, "prompt violates the content policy")
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine something")
    text = await failure_text(telegram, bot, chat.id)
    assert text == (
        "🚫 The service refused to make the images: prompt violates the content policy\n"
        "💳 The 5 credits were returned."
    )
    assert kie.create_attempts == 1


@pytest.mark.parametrize(
    ("code", "msg"),
    [(401, "bad key"), (402, "Insufficient credits"), (455, "maintenance"), (505, "disabled")],
)
async def test_account_and_service_problems_read_as_unavailable(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, code: int, msg: str
) -> None:
    clock = FakeClock(time.time())
    bot = await start_bot(clock=clock)
    kie.fail_creates(code, msg, times=10_000)  # an outage longer than OUTAGE_WAIT
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine something")
    await telegram.wait_for(
        lambda: any(
            "not answering right now" in c.result["text"]
            for c in telegram.calls_of("editMessageText", chat.id)
            if c.ok
        )
    )
    clock.advance(FAST.outage_wait + 1)
    text = await failure_text(telegram, bot, chat.id)
    assert text == (
        "🛠 Could not make the images: the service is temporarily unavailable. "
        "Please try again later.\n"
        "💳 The 5 credits were returned."
    )
    assert msg not in text  # account details stay with the operator


async def test_transient_server_errors_are_retried(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.fail_creates(500, "server error", times=1)
    kie.fail_creates(502, "bad gateway", times=1, http_status=502)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine persistence")
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert kie.create_attempts == 3
    assert len(kie.created) == 1


async def test_transient_errors_that_never_end_fail_once_outage_wait_is_over(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    clock = FakeClock(time.time())
    bot = await start_bot(clock=clock)
    kie.fail_creates(500, "server error", times=10_000)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine persistence")
    # The create is retried, then the task waits in line (the account refused it a moment
    # ago), its status saying the service is not answering.
    await telegram.wait_for(
        lambda: any(
            "not answering right now" in c.result["text"]
            for c in telegram.calls_of("editMessageText", chat.id)
            if c.ok
        )
    )
    assert kie.create_attempts == FAST.create_retry.attempts
    assert bot.tasks()[0]["state"] == "pending"
    clock.advance(FAST.outage_wait + 1)  # one more try when the refusal lapses, then refunded
    text = await failure_text(telegram, bot, chat.id)
    assert text.startswith("🛠 Could not make the images: the service is temporarily unavailable")
    assert kie.create_attempts == 2 * FAST.create_retry.attempts


async def test_a_task_that_never_finishes_times_out(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(timing=replace(FAST, poll=replace(FAST.poll, timeout=0.6)))
    kie.scenario = Scenario(duration=60)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine forever")
    text = await failure_text(telegram, bot, chat.id)
    assert text.startswith("⌛ The service took too long to make the images")
    assert bot.tasks()[0]["failure_kind"] == "timeout"


async def test_failure_reason_in_russian(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    ivan = FakeUser(1002, "Иван", "ru")
    kie.scenario = Scenario(outcome="fail", fail_msg="Inappropriate content")
    chat = telegram.private_chat(ivan)
    telegram.send_text(chat, ivan, "/imagine что-то")
    text = await failure_text(telegram, bot, chat.id)
    assert text.startswith("😔 Не удалось создать картинки: Inappropriate content")


async def test_album_refused_by_telegram_is_reported_not_retried_forever(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    telegram.fail_next("sendMediaGroup", 400, "Bad Request: MEDIA_EMPTY", times=2)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine refused")
    text = await failure_text(telegram, bot, chat.id)
    assert text.startswith("😔 Could not send the images here")
