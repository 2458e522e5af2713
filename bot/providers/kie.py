"""The kie dialect (kie.ai, and apikley at its own base URL).

Business errors come back as HTTP 200 with the error in the body's `code`, so both the
HTTP status and `code` are checked. The message field is `msg` on some pages and
`message` on others; both are read. Unknown fields are ignored.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from bot.core.constants import ASPECT_RATIOS
from bot.core.lifecycle import AnimateMode, TaskKind
from bot.providers.base import (
    MODELS,
    Capabilities,
    ErrorKind,
    GenerationRequest,
    ProviderError,
    UpstreamState,
    UpstreamStatus,
    http_urls,
)
from bot.providers.http import JsonProvider, kind_for_http

_log = logging.getLogger(__name__)

_STATES = {
    "waiting": UpstreamState.QUEUED,
    "queuing": UpstreamState.QUEUED,
    "generating": UpstreamState.WORKING,
    "success": UpstreamState.SUCCEEDED,
    "fail": UpstreamState.FAILED,
}

# Business codes (docs/upstream/README.md, "Errors") beyond the common ones.
_CODE_KINDS = {
    433: ErrorKind.UNAVAILABLE,  # sub-key over its limit
    455: ErrorKind.UNAVAILABLE,  # maintenance
    500: ErrorKind.TRANSIENT,
    501: ErrorKind.REJECTED,  # generation failed
    505: ErrorKind.UNAVAILABLE,  # feature disabled
}


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")

    taskId: str | None = None
    state: str
    resultJson: str | None = None
    failCode: str | int | None = None
    failMsg: str | None = None


class KieProvider(JsonProvider):
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: SecretStr,
        upload_url: str | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            name=name,
            base_url=base_url,
            api_key=api_key,
            code_kinds=_CODE_KINDS,
            timeout=timeout,
            transport=transport,
        )
        self._upload_url = upload_url.rstrip("/") if upload_url else None
        self.capabilities = Capabilities(
            text_to_image=True,
            image_to_video_from_task=True,
            image_to_video_from_url=True,
            text_to_video=True,
            upscale=True,
            callbacks=True,
            file_upload=self._upload_url is not None,
            modes=tuple(AnimateMode),
            ratios=ASPECT_RATIOS,
            balance=True,
        )

    async def create_task(self, request: GenerationRequest) -> str:
        body: dict[str, Any] = {"model": MODELS[request.kind], "input": _input_for(request)}
        if request.callback_url:
            body["callBackUrl"] = request.callback_url
        return await self._create("/api/v1/jobs/createTask", body, "taskId")

    async def get_status(self, upstream_task_id: str) -> UpstreamStatus:
        try:
            envelope = await self._api.call(
                "GET", "/api/v1/jobs/recordInfo", params={"taskId": upstream_task_id}
            )
        except ProviderError as error:
            # Right after creation the record is not there yet: not a failure.
            if error.code == 422 and "recordinfo is null" in error.message.lower():
                raise ProviderError(ErrorKind.NOT_READY, error.message, code=422) from error
            raise
        try:
            record = _Record.model_validate(envelope.data)
        except ValidationError as error:
            raise ProviderError(ErrorKind.TRANSIENT, "unreadable task record") from error
        state = _STATES.get(record.state)
        if state is None:
            _log.warning("unknown upstream state %r; treating it as working", record.state)
            state = UpstreamState.WORKING
        if state is UpstreamState.SUCCEEDED:
            urls = _result_urls(record.resultJson)
            if not urls:
                return UpstreamStatus(
                    UpstreamState.FAILED, fail_message="the service returned no images"
                )
            return UpstreamStatus(state, result_urls=urls)
        if state is UpstreamState.FAILED:
            return UpstreamStatus(
                state,
                fail_code=None if record.failCode is None else str(record.failCode),
                fail_message=record.failMsg or None,
            )
        return UpstreamStatus(state)

    def callback_task_id(self, body: object) -> str | None:
        data = body.get("data") if isinstance(body, dict) else None
        task_id = data.get("taskId") if isinstance(data, dict) else None
        return task_id if isinstance(task_id, str) and task_id else None

    async def get_account_credits(self) -> float:
        envelope = await self._api.call("GET", "/api/v1/chat/credit")
        if not isinstance(envelope.data, int | float):
            raise ProviderError(
                ErrorKind.TRANSIENT, "the credit endpoint answered without a number"
            )
        return float(envelope.data)

    async def upload_file(self, content: bytes, file_name: str) -> str | None:
        """The kie file upload API (files live 3 days): multipart `file`, `uploadPath`."""
        if self._upload_url is None:
            return None
        try:
            response = await self._api.client.post(
                f"{self._upload_url}/api/file-stream-upload",
                files={"file": (file_name, content)},
                data={"uploadPath": "imagine-bot", "fileName": file_name},
                timeout=httpx.Timeout(60.0, connect=5.0),
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ProviderError(ErrorKind.TRANSIENT, f"upload failed: {error}") from error
        if not isinstance(body, dict):
            raise ProviderError(ErrorKind.TRANSIENT, "upload answered without a JSON object")
        data = body.get("data")
        url = data.get("downloadUrl") or data.get("fileUrl") if isinstance(data, dict) else None
        if response.status_code != 200 or body.get("code") != 200 or not isinstance(url, str):
            kind = ErrorKind.TRANSIENT
            if response.status_code != 200:
                kind = kind_for_http(response.status_code)
            raise ProviderError(kind, f"upload refused: {body.get('msg') or response.status_code}")
        return url


def _input_for(request: GenerationRequest) -> dict[str, Any]:
    """The documented `input` of each model; optional fields only when they have a value."""
    fields: dict[str, Any]
    match request.kind:
        case TaskKind.TEXT_TO_IMAGE | TaskKind.TEXT_TO_VIDEO:
            fields = {"prompt": request.prompt, "aspect_ratio": request.aspect_ratio}
        case TaskKind.IMAGE_TO_VIDEO if request.image_url:
            # An external image: spicy is not supported (the upstream would switch to normal).
            fields = {
                "image_urls": [request.image_url],
                "prompt": request.prompt,
                "mode": request.mode,
            }
        case TaskKind.IMAGE_TO_VIDEO:
            fields = {
                "task_id": request.source_task_id,
                "index": request.index,
                "prompt": request.prompt,
                "mode": request.mode,
            }
        case TaskKind.UPSCALE:
            fields = {"task_id": request.source_task_id}
    return {name: value for name, value in fields.items() if value is not None}


def _result_urls(result_json: str | None) -> tuple[str, ...]:
    if not result_json:
        return ()
    try:
        parsed = json.loads(result_json)
    except ValueError:
        return ()
    return http_urls(parsed.get("resultUrls") if isinstance(parsed, dict) else None)
