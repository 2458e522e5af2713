"""The grokimagineapi dialect: video only. `POST /v1/generate` with `mode`, `prompt`,
`images` (URLs) and `ratio`; `GET /v1/status`. No callbacks: always polled. Errors are
`{"code": 400, "message": …, "error": "INVALID_REQUEST"}` with the same HTTP status;
a 429 carries `X-RateLimit-Remaining` and `X-RateLimit-Reset`.
"""

from __future__ import annotations

from typing import Any

from bot.core.constants import ASPECT_RATIOS
from bot.core.lifecycle import AnimateMode, TaskKind
from bot.providers.base import (
    Capabilities,
    ErrorKind,
    GenerationRequest,
    ProviderError,
    UpstreamState,
    UpstreamStatus,
    http_urls,
)
from bot.providers.http import JsonProvider

_STATES = {
    "pending": UpstreamState.QUEUED,
    "queued": UpstreamState.QUEUED,
    "processing": UpstreamState.WORKING,
    "running": UpstreamState.WORKING,
    "completed": UpstreamState.SUCCEEDED,
    "success": UpstreamState.SUCCEEDED,
    "failed": UpstreamState.FAILED,
    "error": UpstreamState.FAILED,
}


class GrokImagineApiProvider(JsonProvider):
    name = "grokimagineapi"
    capabilities = Capabilities(
        text_to_image=False,
        image_to_video_from_task=False,
        image_to_video_from_url=True,
        text_to_video=True,
        upscale=False,
        callbacks=False,
        file_upload=False,
        modes=tuple(AnimateMode),
        ratios=ASPECT_RATIOS,
    )

    async def create_task(self, request: GenerationRequest) -> str:
        if request.kind not in (TaskKind.TEXT_TO_VIDEO, TaskKind.IMAGE_TO_VIDEO):
            raise ProviderError(ErrorKind.REJECTED, f"{request.kind} is not offered here")
        body: dict[str, Any] = {"mode": request.mode or AnimateMode.NORMAL}
        if request.prompt:
            body["prompt"] = request.prompt
        if request.image_url:
            body["images"] = [request.image_url]
        if request.aspect_ratio:
            body["ratio"] = request.aspect_ratio
        return await self._create("/v1/generate", body, "task_id")

    async def get_status(self, upstream_task_id: str) -> UpstreamStatus:
        envelope = await self._api.call("GET", "/v1/status", params={"task_id": upstream_task_id})
        data = envelope.data if isinstance(envelope.data, dict) else {}
        state = _STATES.get(str(data.get("status") or "").lower(), UpstreamState.WORKING)
        if state is UpstreamState.SUCCEEDED:
            urls = http_urls(data.get("response"))
            if not urls:
                return UpstreamStatus(UpstreamState.FAILED, fail_message="no video came back")
            return UpstreamStatus(state, result_urls=urls[:1])
        if state is UpstreamState.FAILED:
            message = data.get("error_message")
            return UpstreamStatus(state, fail_message=message if isinstance(message, str) else None)
        return UpstreamStatus(state)

    def callback_task_id(self, body: object) -> str | None:
        return None  # it sends no callbacks
