"""The kie dialect client, against the documentation's own example answers.

The examples are copied from docs/upstream/pages (000: createTask, 002: the record
as callbacks and recordInfo show it). httpx's MockTransport answers with them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from bot.core.lifecycle import TaskKind
from bot.providers import (
    ErrorKind,
    GenerationRequest,
    KieProvider,
    ProviderError,
    UpstreamState,
)

DOC_CREATE_ANSWER = {"code": 200, "msg": "success", "data": {"taskId": "task_grok_12345678"}}
DOC_CREATE_ANSWER_MESSAGE_SPELLING = {
    "code": 200,
    "message": "success",
    "data": {"taskId": "task_12345678"},
}
DOC_SUCCESS_RECORD = {
    "code": 200,
    "data": {
        "completeTime": 1755599644000,
        "consumeCredits": 100,
        "costTime": 8,
        "createTime": 1755599634000,
        "model": "grok-imagine/image-to-video",
        "param": '{"callBackUrl":"https://your-domain.com/api/callback"}',
        "remainedCredits": 2510330,
        "resultJson": '{"resultUrls":["https://example.com/generated-image.jpg"]}',
        "state": "success",
        "taskId": "e989621f54392584b05867f87b160672",
        "updateTime": 1755599644000,
    },
    "msg": "Playground task completed successfully.",
}
DOC_FAILURE_RECORD = {
    "code": 501,
    "data": {
        "completeTime": 1755597081000,
        "consumeCredits": 0,
        "costTime": 0,
        "createTime": 1755596341000,
        "failCode": "500",
        "failMsg": "Internal server error",
        "model": "grok-imagine/image-to-video",
        "param": "{}",
        "remainedCredits": 2510430,
        "state": "fail",
        "taskId": "bd3a37c523149e4adf45a3ddb5faf1a8",
        "updateTime": 1755597097000,
    },
    "msg": "Playground task failed.",
}

Handler = Callable[[httpx.Request], httpx.Response]
IMAGE_REQUEST = GenerationRequest(TaskKind.TEXT_TO_IMAGE, prompt="a fox", aspect_ratio="1:1")


def provider(handler: Handler) -> KieProvider:
    return KieProvider(
        name="kie",
        base_url="https://api.kie.test",
        api_key=SecretStr("doc-key"),
        transport=httpx.MockTransport(handler),
    )


async def test_create_sends_the_documented_request() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=DOC_CREATE_ANSWER)

    client = provider(answer)
    task_id = await client.create_task(
        GenerationRequest(
            TaskKind.TEXT_TO_IMAGE,
            prompt="a fox",
            aspect_ratio="3:2",
            callback_url="https://bot.example/cb/1",
        )
    )
    await client.aclose()
    assert task_id == "task_grok_12345678"
    [request] = seen
    assert (request.method, request.url.path) == ("POST", "/api/v1/jobs/createTask")
    assert request.headers["authorization"] == "Bearer doc-key"
    assert json.loads(request.content) == {
        "model": "grok-imagine/text-to-image",
        "input": {"prompt": "a fox", "aspect_ratio": "3:2"},
        "callBackUrl": "https://bot.example/cb/1",
    }


async def test_message_spelling_is_read_too() -> None:
    client = provider(lambda _: httpx.Response(200, json=DOC_CREATE_ANSWER_MESSAGE_SPELLING))
    assert await client.create_task(IMAGE_REQUEST) == "task_12345678"
    await client.aclose()


async def test_success_record_gives_the_result_urls() -> None:
    client = provider(lambda _: httpx.Response(200, json=DOC_SUCCESS_RECORD))
    status = await client.get_status("e989621f54392584b05867f87b160672")
    await client.aclose()
    assert status.state is UpstreamState.SUCCEEDED
    assert status.result_urls == ("https://example.com/generated-image.jpg",)


async def test_failure_record_gives_the_reason() -> None:
    # Read the record's data; the envelope's 501 says the same as its state.
    record = dict(DOC_FAILURE_RECORD, code=200)
    client = provider(lambda _: httpx.Response(200, json=record))
    status = await client.get_status("bd3a37c523149e4adf45a3ddb5faf1a8")
    await client.aclose()
    assert status.state is UpstreamState.FAILED
    assert (status.fail_code, status.fail_message) == ("500", "Internal server error")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("waiting", UpstreamState.QUEUED),
        ("queuing", UpstreamState.QUEUED),
        ("generating", UpstreamState.WORKING),
        ("something-new", UpstreamState.WORKING),
    ],
)
async def test_states_in_progress(state: str, expected: UpstreamState) -> None:
    body = {"code": 200, "msg": "success", "data": {"taskId": "t", "state": state}}
    client = provider(lambda _: httpx.Response(200, json=body))
    assert (await client.get_status("t")).state is expected
    await client.aclose()


async def test_success_without_urls_is_a_failure() -> None:
    body = {"code": 200, "data": {"taskId": "t", "state": "success", "resultJson": "{}"}}
    client = provider(lambda _: httpx.Response(200, json=body))
    status = await client.get_status("t")
    await client.aclose()
    assert status.state is UpstreamState.FAILED


@pytest.mark.parametrize(
    ("http_status", "body", "kind"),
    [
        (200, {"code": 422, "msg": "recordInfo is null"}, ErrorKind.NOT_READY),
        (200, {"code": 404, "msg": "not found"}, ErrorKind.NOT_FOUND),
        (200, {"code": 401, "msg": "unauthorized"}, ErrorKind.UNAVAILABLE),
        (200, {"code": 402, "msg": "Insufficient credits"}, ErrorKind.UNAVAILABLE),
        (200, {"code": 429, "msg": "slow down"}, ErrorKind.TRANSIENT),
        (200, {"code": 455, "message": "maintenance"}, ErrorKind.UNAVAILABLE),
        (200, {"code": 500, "msg": "server error"}, ErrorKind.TRANSIENT),
        (200, {"code": 505, "msg": "disabled"}, ErrorKind.UNAVAILABLE),
        (200, {"code": 422, "msg": "aspect_ratio invalid"}, ErrorKind.REJECTED),
        (502, "<html>bad gateway</html>", ErrorKind.TRANSIENT),
        (429, {"code": 429, "msg": "rate limited"}, ErrorKind.TRANSIENT),
        (200, "not json", ErrorKind.TRANSIENT),
    ],
)
async def test_error_answers_map_to_kinds(http_status: int, body: object, kind: ErrorKind) -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(http_status, text=body)
        return httpx.Response(http_status, json=body)

    client = provider(answer)
    with pytest.raises(ProviderError) as raised:
        await client.get_status("t")
    await client.aclose()
    assert raised.value.kind is kind


async def test_create_that_timed_out_has_an_unknown_outcome() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    client = provider(answer)
    with pytest.raises(ProviderError) as raised:
        await client.create_task(IMAGE_REQUEST)
    assert raised.value.kind is ErrorKind.UNKNOWN_OUTCOME
    with pytest.raises(ProviderError) as raised:
        await client.get_status("t")  # reading is safe to repeat
    assert raised.value.kind is ErrorKind.TRANSIENT
    await client.aclose()


async def test_create_that_could_not_connect_is_safe_to_retry() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = provider(answer)
    with pytest.raises(ProviderError) as raised:
        await client.create_task(IMAGE_REQUEST)
    assert raised.value.kind is ErrorKind.TRANSIENT
    await client.aclose()
