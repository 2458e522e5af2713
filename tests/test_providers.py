"""Every upstream dialect: contract tests from the documentation's own examples, and the bot
end to end against a test server of each."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import SecretStr

from bot.core.lifecycle import TaskKind
from bot.providers import (
    ErrorKind,
    GenerationRequest,
    Grok5ImagineProvider,
    GrokImagineApiProvider,
    ProviderError,
    UpstreamState,
)
from fakes.dialects import FakeGrok5Imagine, FakeGrokImagineApi
from fakes.kie import HELD, FakeKie, Scenario, png
from fakes.telegram import Call, FakeTelegram, FakeUser
from tests.conftest import (
    FAST,
    PROVIDER_KEY,
    FakeClock,
    StartBot,
    eventually,
    failure_notice,
    public_endpoint,
)

ANN = FakeUser(1001, "Ann", "en")
OPERATOR = FakeUser(4242, "Operator", "en")

Handler = Callable[[httpx.Request], httpx.Response]


# --- contract tests: the documentation's examples --------------------------------------------

DOC_GROK5_GENERATE = {
    "code": 200,
    "message": "success",
    "data": {"task_id": "n31b6d54c8f4b4c4e8kie", "status": "IN_PROGRESS"},
}
DOC_GROK5_STATUS = {
    "code": 200,
    "message": "success",
    "data": {
        "task_id": "n31b6d54c8f4b4c4e8kie",
        "status": "SUCCESS",
        "request": {
            "model": "grok-imagine/text-to-image",
            "input": {"prompt": "A majestic dragon flying over a neon-lit cyberpunk city"},
        },
        "response": {"resultUrls": ["https://static.gogloai.com/grok-imagine/image_001.png"]},
        "consumed_credits": 5,
        "error_message": None,
        "created_at": "2025-06-14T05:21:11Z",
    },
}
DOC_GROKAPI_GENERATE = {"code": 200, "message": "success", "data": {"task_id": "task_123456789"}}
DOC_GROKAPI_STATUS = {
    "code": 200,
    "message": "success",
    "data": {
        "consumed_credits": 40,
        "created_at": "2024-01-01T00:00:00Z",
        "status": "completed",
        "task_id": "task_123456789",
        "error_message": None,
        "request": {
            "mode": "fun",
            "prompt": "a beautiful landscape with mountains",
            "ratio": "1:1",
        },
        "response": [
            "https://cdn.example.com/generated/video1.mp4",
            "https://cdn.example.com/generated/video2.mp4",
        ],
    },
}
DOC_GROKAPI_ERROR = {
    "code": 400,
    "message": "Invalid request: The prompt parameter is required",
    "error": "INVALID_REQUEST",
}


def grok5(handler: Handler) -> Grok5ImagineProvider:
    return Grok5ImagineProvider(
        base_url="https://grok5.test",
        api_key=SecretStr("k"),
        transport=httpx.MockTransport(handler),
    )


def grokapi(handler: Handler) -> GrokImagineApiProvider:
    return GrokImagineApiProvider(
        base_url="https://grokapi.test",
        api_key=SecretStr("k"),
        transport=httpx.MockTransport(handler),
    )


async def test_grok5imagine_documented_request_and_answers() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/generate":
            return httpx.Response(200, json=DOC_GROK5_GENERATE)
        return httpx.Response(200, json=DOC_GROK5_STATUS)

    client = grok5(answer)
    task_id = await client.create_task(
        GenerationRequest(
            TaskKind.TEXT_TO_IMAGE,
            prompt="A majestic dragon flying over a neon-lit cyberpunk city",
            callback_url="https://bot.example/callbacks/1/s",
        )
    )
    status = await client.get_status(task_id)
    await client.aclose()
    assert task_id == "n31b6d54c8f4b4c4e8kie"
    assert json.loads(seen[0].content) == {
        "model": "grok-imagine/text-to-image",
        "input": {"prompt": "A majestic dragon flying over a neon-lit cyberpunk city"},
        "public": False,
        "callback_url": "https://bot.example/callbacks/1/s",
    }
    assert (seen[1].method, str(seen[1].url)) == (
        "GET",
        "https://grok5.test/api/status?task_id=n31b6d54c8f4b4c4e8kie",
    )
    assert status.state is UpstreamState.SUCCEEDED
    assert status.result_urls == ("https://static.gogloai.com/grok-imagine/image_001.png",)
    assert client.callback_task_id({"data": {"task_id": "abc"}}) == "abc"
    assert client.callback_task_id({"task_id": "xyz", "unknown": 1}) == "xyz"
    assert client.callback_task_id(["nothing"]) is None


async def test_grokimagineapi_documented_request_and_answers() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/generate":
            return httpx.Response(200, json=DOC_GROKAPI_GENERATE)
        return httpx.Response(200, json=DOC_GROKAPI_STATUS)

    client = grokapi(answer)
    task_id = await client.create_task(
        GenerationRequest(
            TaskKind.TEXT_TO_VIDEO,
            prompt="a beautiful landscape with mountains",
            aspect_ratio="1:1",
            mode="fun",
        )
    )
    status = await client.get_status(task_id)
    await client.aclose()
    assert json.loads(seen[0].content) == {
        "mode": "fun",
        "prompt": "a beautiful landscape with mountains",
        "ratio": "1:1",
    }
    assert status.state is UpstreamState.SUCCEEDED
    assert status.result_urls == ("https://cdn.example.com/generated/video1.mp4",)


async def test_grokimagineapi_error_format_and_rate_limit_headers() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/generate":
            return httpx.Response(400, json=DOC_GROKAPI_ERROR)
        return httpx.Response(
            429,
            json={"code": 429, "message": "Rate limited", "error": "RATE_LIMITED"},
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 30)},
        )

    client = grokapi(answer)
    with pytest.raises(ProviderError) as rejected:
        await client.create_task(GenerationRequest(TaskKind.TEXT_TO_VIDEO, prompt="x"))
    with pytest.raises(ProviderError) as limited:
        await client.get_status("t")
    await client.aclose()
    assert rejected.value.kind is ErrorKind.REJECTED
    assert rejected.value.message == "Invalid request: The prompt parameter is required"
    assert limited.value.kind is ErrorKind.TRANSIENT
    assert limited.value.retry_after is not None
    assert 28 <= limited.value.retry_after <= 30


@pytest.mark.parametrize(
    ("status", "body", "kind", "out_of_credits"),
    [
        (401, {"code": 401, "message": "Unauthorized"}, ErrorKind.UNAVAILABLE, False),
        (402, {"code": 402, "message": "Payment Required"}, ErrorKind.UNAVAILABLE, True),
        (429, {"code": 429, "message": "Too Many Requests"}, ErrorKind.TRANSIENT, False),
        (500, {"code": 500, "message": "oops"}, ErrorKind.TRANSIENT, False),
        (503, "<html>down</html>", ErrorKind.TRANSIENT, False),
    ],
)
async def test_grok5imagine_http_errors(
    status: int, body: object, kind: ErrorKind, out_of_credits: bool
) -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    client = grok5(answer)
    with pytest.raises(ProviderError) as raised:
        await client.create_task(GenerationRequest(TaskKind.TEXT_TO_IMAGE, prompt="x"))
    await client.aclose()
    assert raised.value.kind is kind
    assert raised.value.out_of_credits is out_of_credits


# --- the bot against each dialect's test server -------------------------------------------


@pytest.fixture
async def grok5_server() -> AsyncIterator[FakeGrok5Imagine]:
    server = FakeGrok5Imagine(PROVIDER_KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def grokapi_server() -> AsyncIterator[FakeGrokImagineApi]:
    server = FakeGrokImagineApi(PROVIDER_KEY)
    await server.start()
    yield server
    await server.stop()


def ok_calls(telegram: FakeTelegram, method: str, chat_id: int) -> list[Call]:
    return [c for c in telegram.calls_of(method, chat_id) if c.ok]


async def test_grok5imagine_imagine_then_animate_by_result_url(
    telegram: FakeTelegram, grok5_server: FakeGrok5Imagine, start_bot: StartBot
) -> None:
    bot = await start_bot(provider="grok5imagine", provider_base_url=grok5_server.url)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a fox in snow")
    [source] = await bot.wait_until_settled()
    [first] = grok5_server.created
    assert first.request == {
        "model": "grok-imagine/text-to-image",
        "input": {"prompt": "a fox in snow"},
        "public": False,
    }
    buttons = telegram.message(chat.id, source["buttons_message_id"]).payload["reply_markup"]
    animate_2 = buttons["inline_keyboard"][0][1]
    telegram.press(chat, ANN, source["buttons_message_id"], animate_2["callback_data"])
    # No modes here: the bot goes straight to the motion prompt.
    draft = (await telegram.wait_for_call("sendMessage", chat.id, count=3))[2]
    assert draft.result["text"].startswith("🎬 Animating image 2.\nReply to this message")
    start = draft.result["reply_markup"]["inline_keyboard"][0][0]
    telegram.press(chat, ANN, draft.result["message_id"], start["callback_data"])
    tasks = await bot.wait_until_settled(count=2)
    second = grok5_server.created[1]
    assert second.request == {
        "model": "grok-imagine/image-to-video",
        "input": {"image_urls": [json.loads(source["result_urls"])[1]]},
        "public": False,
    }
    [video] = ok_calls(telegram, "sendVideo", chat.id)
    labels = [b["text"] for row in video.json("reply_markup")["inline_keyboard"] for b in row]
    assert labels == ["⬆ Upscale", "🔁 Again"]
    assert tasks[1]["state"] == "delivered"


async def test_a_set_from_yesterday_is_animated_from_telegram_s_copy_of_the_image(
    telegram: FakeTelegram, grok5_server: FakeGrok5Imagine, start_bot: StartBot
) -> None:
    # grok5imagine animates by the image's URL; its result URLs live about a day.
    clock = FakeClock(time.time())
    bot = await start_bot(
        provider="grok5imagine",
        provider_base_url=grok5_server.url,
        clock=clock,
        **public_endpoint(),
    )
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a fox in snow")
    [source] = await bot.wait_until_settled()
    grok5_server.expire_results()
    clock.advance(25 * 3600)  # the next day
    buttons = telegram.message(chat.id, source["buttons_message_id"]).payload["reply_markup"]
    animate_2 = buttons["inline_keyboard"][0][1]
    telegram.press(chat, ANN, source["buttons_message_id"], animate_2["callback_data"])
    draft = (await telegram.wait_for_call("sendMessage", chat.id, count=3))[2]
    start = draft.result["reply_markup"]["inline_keyboard"][0][0]
    telegram.press(chat, ANN, draft.result["message_id"], start["callback_data"])
    tasks = await bot.wait_until_settled(count=2)
    assert tasks[1]["state"] == "delivered"
    # Not the expired result URL: the image Telegram keeps, at the bot's own short-lived link.
    [url] = grok5_server.created[1].request["input"]["image_urls"]
    assert url.startswith(f"{bot.settings.public_base}/files/")
    assert grok5_server.image_url_fetches == [url]
    async with httpx.AsyncClient() as client:
        served = await client.get(url)
    file_id = json.loads(source["media_file_ids"])[1]
    assert served.content == telegram.file_content(file_id)


async def test_grok5imagine_refuses_aspect_ratios_and_uses_callbacks(
    telegram: FakeTelegram, grok5_server: FakeGrok5Imagine, start_bot: StartBot
) -> None:
    bot = await start_bot(
        provider="grok5imagine", provider_base_url=grok5_server.url, **public_endpoint()
    )
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a fox --ar 3:2")
    [refusal] = await telegram.wait_for_call("sendMessage", chat.id)
    assert refusal.result["text"] == "This service picks the shape itself; leave out --ar."
    telegram.send_text(chat, ANN, "/imagine a fox")
    [task] = await bot.wait_until_settled()
    [upstream] = grok5_server.created
    assert upstream.request["callback_url"].startswith(f"{bot.settings.public_base}/callbacks/")
    assert [c.status for c in grok5_server.callbacks] == [200]
    assert upstream.status_reads == 1
    assert task["state"] == "delivered"


async def test_grokimagineapi_is_video_only(
    telegram: FakeTelegram, grokapi_server: FakeGrokImagineApi, start_bot: StartBot
) -> None:
    bot = await start_bot(
        provider="grokimagineapi", provider_base_url=grokapi_server.url, **public_endpoint()
    )
    for commands in telegram.commands.values():
        assert [c["command"] for c in commands] == [
            "video",
            "animate",
            "cancel",
            "history",
            "quota",
            "settings",
            "help",
        ]
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a fox")
    [refusal] = await telegram.wait_for_call("sendMessage", chat.id)
    assert refusal.result["text"] == (
        "Images are not available with this bot's service. "
        "Try /video for a video, or /animate on a photo of yours."
    )
    telegram.send_text(chat, ANN, "/upscale")
    grokapi_server.scenario = HELD
    telegram.send_text(chat, ANN, "/video a wave breaking --ar 9:16")
    # No callbacks here, even with a PUBLIC_URL: polled.
    await eventually(lambda: grokapi_server.created and grokapi_server.created[0].status_reads >= 2)
    [upstream] = grokapi_server.created
    grokapi_server.finish(upstream)
    [task] = await bot.wait_until_settled()
    assert upstream.request == {"mode": "normal", "prompt": "a wave breaking", "ratio": "9:16"}
    [video] = ok_calls(telegram, "sendVideo", chat.id)
    labels = [b["text"] for row in video.json("reply_markup")["inline_keyboard"] for b in row]
    assert labels == ["🔁 Again"]
    await telegram.wait_for(
        lambda: (
            "Upscaling is not available with this bot's service."
            in [c.result["text"] for c in ok_calls(telegram, "sendMessage", chat.id)]
        )
    )
    assert task["cost"] == 24


async def test_grokimagineapi_animates_a_users_photo(
    telegram: FakeTelegram, grokapi_server: FakeGrokImagineApi, start_bot: StartBot
) -> None:
    bot = await start_bot(
        provider="grokimagineapi", provider_base_url=grokapi_server.url, **public_endpoint()
    )
    chat = telegram.private_chat(ANN)
    photo = png(5, pad_to=10_000)
    telegram.send_photo(chat, ANN, photo, caption="/animate")
    draft = (await telegram.wait_for_call("sendMessage", chat.id))[0]
    modes = draft.result["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in modes] == ["😄 Fun", "🎞 Normal"]
    telegram.press(chat, ANN, draft.result["message_id"], modes[0]["callback_data"])
    await bot.wait_until_settled()
    [upstream] = grokapi_server.created
    [url] = upstream.request["images"]
    assert upstream.request == {"mode": "fun", "images": [url]}
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).content == photo


async def test_rate_limit_reset_header_is_waited_out(
    telegram: FakeTelegram, grokapi_server: FakeGrokImagineApi, start_bot: StartBot
) -> None:
    bot = await start_bot(provider="grokimagineapi", provider_base_url=grokapi_server.url)
    grokapi_server.fail_creates(
        429,
        "Rate limited",
        http_status=429,
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
    )
    grokapi_server.fail_creates(429, "Rate limited", http_status=429)  # no headers: backoff
    chat = telegram.private_chat(ANN)
    sent = time.time()
    telegram.send_text(chat, ANN, "/video patience")
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert grokapi_server.create_attempts == 3
    # The first 429 asked for a second's pause; the bot did not come back sooner.
    assert grokapi_server.created[0].created_at - sent >= 1.0


async def test_a_short_outage_waits_and_the_account_returns_when_its_balance_does(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    clock = FakeClock(time.time())  # the breaker's cool-down never ends by itself here
    bot = await start_bot(admin_user_ids=f"{OPERATOR.id}", clock=clock)
    operator_chat = telegram.private_chat(OPERATOR)
    kie.credits = 0  # a pool of one, out of credits: creates answer 402
    chat = telegram.private_chat(ANN)

    def waiting_for_the_service(count: int) -> Callable[[], list[Call]]:
        def found() -> list[Call]:
            edits = [
                c
                for c in ok_calls(telegram, "editMessageText", chat.id)
                if "not answering right now" in c.result["text"]
            ]
            return edits if len({c.params["message_id"] for c in edits}) >= count else []

        return found

    # The first 402 takes the account out of rotation: the request waits in line, saying
    # why, and so do the next two, without the upstream being asked again meanwhile.
    telegram.send_text(chat, ANN, "/imagine try 0")
    await telegram.wait_for(waiting_for_the_service(1))
    for number in (1, 2):
        telegram.send_text(chat, ANN, f"/imagine try {number}")
    [notice, *_] = await telegram.wait_for(waiting_for_the_service(3))
    assert notice.result["text"] == (
        "⏳ The service is not answering right now. Your request waits for it, up to 2 min; "
        "if it does not come back by then, your credits are returned."
    )
    assert kie.create_attempts == 1
    [alert] = ok_calls(telegram, "sendMessage", operator_chat.id)  # one alert for the outage
    assert alert.result["text"].startswith("⚠️ The kie account is out of credits")
    checks = kie.credit_checks
    await eventually(lambda: kie.credit_checks > checks)  # checked, for nothing

    kie.credits = 1000  # the operator tops the account up: the next check lets a probe go
    kie.scenario = HELD
    # The probe taken, the other two go at once (not when the probe's task ends).
    await eventually(lambda: len(kie.created) == 3)
    for task in kie.created:
        kie.finish(task)
    tasks = await bot.wait_until_settled(count=3)
    assert [t["state"] for t in tasks] == ["delivered"] * 3
    assert kie.create_attempts == 4
    alerts = [c.result["text"] for c in ok_calls(telegram, "sendMessage", operator_chat.id)]
    assert alerts[1:] == ["✅ The kie account is back in rotation."]
    kinds = [r["kind"] for r in bot.rows("SELECT kind FROM ledger ORDER BY id")]
    assert kinds.count("refund") == 0


async def test_an_outage_longer_than_outage_wait_refunds_the_waiting_requests(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    clock = FakeClock(time.time())
    bot = await start_bot(admin_user_ids=f"{OPERATOR.id}", clock=clock)
    operator_chat = telegram.private_chat(OPERATOR)
    kie.credits = 0
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine patience")
    await telegram.wait_for(
        lambda: [
            c
            for c in ok_calls(telegram, "editMessageText", chat.id)
            if "not answering right now" in c.result["text"]
        ]
    )
    clock.advance(FAST.outage_wait + 1)  # OUTAGE_WAIT passes with the account still out
    [task] = await bot.wait_until_settled()
    assert failure_notice(telegram, chat.id, task) == (
        "🛠 Could not make the images: the service is temporarily unavailable. "
        "Please try again later.\n💳 The 5 credits were returned."
    )
    # The one that found the outage, and the probe its cool-down let through at the end.
    assert kie.create_attempts == 2
    assert len(ok_calls(telegram, "sendMessage", operator_chat.id)) == 1  # no "back"

    # A new outage after the account came back is announced again.
    kie.credits = 1000
    telegram.send_text(chat, ANN, "/imagine it works again")
    [_, second] = await bot.wait_until_settled(count=2)
    assert second["state"] == "delivered"
    assert len(ok_calls(telegram, "sendMessage", operator_chat.id)) == 2  # back
    kie.credits = 0  # runs dry again: a new outage, and a top-up ends it
    telegram.send_text(chat, ANN, "/imagine and runs dry again")
    await telegram.wait_for(lambda: len(ok_calls(telegram, "sendMessage", operator_chat.id)) == 3)
    kie.credits = 100
    [*_, third] = await bot.wait_until_settled(count=3)
    assert third["state"] == "delivered"
    alerts = [c.result["text"] for c in ok_calls(telegram, "sendMessage", operator_chat.id)]
    assert [a.split()[0] for a in alerts] == ["⚠️", "✅", "⚠️", "✅"]


async def test_generation_failed_on_creation_is_refunded_with_its_reason(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    kie.fail_creates(501, "Generation failed: nsfw content")
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine something")
    [task] = await bot.wait_until_settled()
    text = failure_notice(telegram, chat.id, task)
    assert text.startswith("🚫 The service refused to make the images: Generation failed: nsfw")
    kinds = [r["kind"] for r in bot.rows("SELECT kind FROM ledger ORDER BY id")]
    assert kinds == ["reserve", "refund"]
    assert kie.create_attempts == 1


async def test_grok5imagine_server_errors_are_retried(
    telegram: FakeTelegram, grok5_server: FakeGrok5Imagine, start_bot: StartBot
) -> None:
    bot = await start_bot(provider="grok5imagine", provider_base_url=grok5_server.url)
    grok5_server.scenario = Scenario(images=2)
    grok5_server.fail_creates(500, "Internal error", times=2)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine resilient")
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert grok5_server.create_attempts == 3
