"""The grok5imagine dialect: `POST /api/generate`, `GET /api/status`, `callback_url`.

Its documented input is `prompt`, `image_urls` or `task_id`, nothing more: no aspect ratio,
no mode, no image index. So a generated image is animated from its result URL, and the bot
offers neither `--ar` nor modes here. Errors come as HTTP statuses (401, 402, 429, 500).
The callback body is undocumented: it is read for a task id and otherwise ignored.
"""

from __future__ import annotations

from typing import Any

from bot.providers.base import (
    MODELS,
    Capabilities,
    GenerationRequest,
    UpstreamState,
    UpstreamStatus,
    http_urls,
)
from bot.providers.http import JsonProvider

_STATES = {
    "IN_PROGRESS": UpstreamState.WORKING,
    "PENDING": UpstreamState.QUEUED,
    "SUCCESS": UpstreamState.SUCCEEDED,
    "FAILED": UpstreamState.FAILED,
}


class Grok5ImagineProvider(JsonProvider):
    name = "grok5imagine"
    capabilities = Capabilities(
        text_to_image=True,
        image_to_video_from_task=False,  # no index: which of the images would it take?
        image_to_video_from_url=True,
        text_to_video=True,
        upscale=True,
        callbacks=True,
        file_upload=False,
        modes=(),
        ratios=(),
    )

    async def create_task(self, request: GenerationRequest) -> str:
        payload: dict[str, Any] = {}
        if request.prompt:
            payload["prompt"] = request.prompt
        if request.image_url:
            payload["image_urls"] = [request.image_url]
        elif request.source_task_id:
            payload["task_id"] = request.source_task_id
        body: dict[str, Any] = {"model": MODELS[request.kind], "input": payload, "public": False}
        if request.callback_url:
            body["callback_url"] = request.callback_url
        return await self._create("/api/generate", body, "task_id")

    async def get_status(self, upstream_task_id: str) -> UpstreamStatus:
        envelope = await self._api.call("GET", "/api/status", params={"task_id": upstream_task_id})
        data = envelope.data if isinstance(envelope.data, dict) else {}
        status = str(data.get("status") or "").upper()
        state = _STATES.get(status, UpstreamState.WORKING)
        if state is UpstreamState.SUCCEEDED:
            response = data.get("response")
            found = http_urls(response.get("resultUrls") if isinstance(response, dict) else None)
            if not found:
                return UpstreamStatus(UpstreamState.FAILED, fail_message="no result came back")
            return UpstreamStatus(state, result_urls=found)
        if state is UpstreamState.FAILED:
            message = data.get("error_message")
            return UpstreamStatus(state, fail_message=message if isinstance(message, str) else None)
        return UpstreamStatus(state)

    def callback_task_id(self, body: object) -> str | None:
        if not isinstance(body, dict):
            return None
        for holder in (body, body.get("data")):
            if isinstance(holder, dict):
                for key in ("task_id", "taskId"):
                    value = holder.get(key)
                    if isinstance(value, str) and value:
                        return value
        return None
